"""Local expert data collection: roll out a task's expert (or any policy) and save episodes in the jat-dataset schema.

``jat-collect --tasks babyai-go-to,metaworld-reach --episodes 100 --out data/`` writes ``data/<task>/``
with ``datasets.DatasetDict.save_to_disk`` (splits ``train`` and ``test``), one row per episode, exactly the
columns and types of the hub data set ``jat-project/jat-dataset``. Training then reads local and hub data the
same way.

Nothing here knows a domain: the schema comes from the task's field specs (:func:`features_for`), the env from
``TaskSpec.make_env`` and the policy from ``TaskSpec.expert`` or a user factory.

Policies. A policy factory has the signature of ``TaskSpec.expert``: ``factory(env) -> policy`` with
``policy(observation_dict) -> action``. A new policy is requested for every episode, right after ``env.reset``,
so stateful experts (the BabyAI bot plans on the freshly reset env) start clean. A policy returns ``None`` when
it gives up on an episode (an expert's loop guard tripped): the episode is dropped with a warning and another
one is played in its place.

Checks. Every observation, action and reward is checked before anything is written: shapes and dtypes
against the field specs, numbers finite (a policy returning NaN is refused, naming the task, episode and step),
actions inside the env's action space. ``--episodes 1`` puts its episode in ``train`` and writes an empty but
typed ``test`` split (the data set loads, and trains).

Atomic writes. A task's data set is written to a temporary directory beside ``OUT/<task>/``, loaded back and
checked, and only then renamed over the old one: a failed or interrupted collection leaves the previous data.

Determinism. Episode ``k`` is reset with a seed drawn from ``numpy.random.default_rng(seed)``, and the action
space is seeded with it too, so the same seed gives the same data, bit for bit.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jat_core.specs import FieldSpec, TaskSpec, check_field_value

from jat_train.episodes import local_path
from jat_train.noise import ActionNoise
from jat_train.sources import REWARDS

PolicyFactory = Callable[[Any], Callable[[dict], Any]]

#: channel counts an image-like uint8 field may have to be stored as a PNG (grayscale, RGB, RGBA)
_IMAGE_CHANNELS = (1, 3, 4)


# -- schema -------------------------------------------------------------------------------------------------
def _is_image(field: FieldSpec) -> bool:
    """A ``uint8`` (H, W, C) field is stored as an image (PNG), as the jat-dataset stores frames."""
    return field.dtype == "uint8" and len(field.shape) == 3 and field.shape[-1] in _IMAGE_CHANNELS


def value_feature(field: FieldSpec):
    """The ``datasets`` feature of one value of a field (one step of an RL field, one sample of a text field).

    ``string`` -> ``Value("string")``; an image-like ``uint8`` (H, W, C) -> ``Image()``; a scalar ->
    ``Value(dtype)``; an array -> nested ``Sequence``s of ``Value(dtype)`` (variable length, as the hub data).
    """
    import datasets

    if field.dtype == "string":
        return datasets.Value("string")
    if _is_image(field):
        return datasets.Image()
    feature = datasets.Value(field.dtype)
    for _ in field.shape:
        feature = datasets.Sequence(feature)
    return feature


def features_for(task: TaskSpec):
    """The ``datasets.Features`` of a task's data set: one row per episode (RL) or per sample (text).

    RL tasks: each observation field and the action field is a ``Sequence`` over the episode's steps of
    :func:`value_feature`, plus ``rewards``, a ``Sequence(Value("float32"))``. Text tasks: one
    :func:`value_feature` per field.
    """
    import datasets

    if not task.is_rl:
        return datasets.Features({f.name: value_feature(f) for f in task.fields})
    columns = {f.name: datasets.Sequence(value_feature(f)) for f in task.fields}
    columns[REWARDS] = datasets.Sequence(datasets.Value("float32"))
    return datasets.Features(columns)


# -- policies -----------------------------------------------------------------------------------------------
def random_policy(env: Any) -> Callable[[dict], Any]:
    """A policy factory that samples the env's action space (seeded by :func:`collect` for each episode)."""
    return lambda observation: env.action_space.sample()


def load_policy_factory(reference: str) -> PolicyFactory:
    """Resolve ``"module:callable"`` (or ``"random"``) into a policy factory.

    Raises:
        ValueError: the reference is malformed, or the module or attribute cannot be found.
    """
    if reference == "random":
        return random_policy
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--policy must be 'module:callable' or 'random', got {reference!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # ImportError, AttributeError, or whatever the module raises on import
        raise ValueError(f"--policy: cannot load policy {reference!r} ({type(exc).__name__}: {exc})") from exc
    if not callable(obj):
        raise ValueError(f"policy {reference!r} is not callable")
    return obj


# -- rollouts -----------------------------------------------------------------------------------------------
def _check_finite(task: TaskSpec, where: str, name: str, value: Any) -> None:
    """Refuse NaN or infinite numbers in a float value (they would poison training)."""
    arr = np.asarray(value)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        shown = arr.tolist() if arr.size <= 16 else f"NaN/inf at {np.argwhere(~np.isfinite(arr))[:4].tolist()}"
        raise ValueError(f"task {task.name!r} {where}: {name} is not finite: {shown}")


def _check_spec(task: TaskSpec, where: str, field: FieldSpec, value: Any) -> None:
    """``check_field_value``, its message completed with where the value was met."""
    try:
        check_field_value(field, value, task=task.name)
    except ValueError as exc:
        raise ValueError(f"{exc} ({where})") from None


def _check_action(task: TaskSpec, env: Any, where: str, action: Any) -> None:
    """An action must be finite, match the field spec and lie in the env's action space."""
    _check_finite(task, where, f"the policy's action {task.action.name!r}", action)
    _check_spec(task, where, task.action, np.asarray(action))
    space = getattr(env, "action_space", None)
    if space is None or getattr(space, "dtype", None) is None:
        return
    try:
        inside = space.contains(np.asarray(action, dtype=space.dtype))
    except (TypeError, ValueError):
        inside = False
    if not inside:
        raise ValueError(
            f"task {task.name!r} {where}: the policy's action {np.asarray(action).tolist()} is outside the "
            f"action space {space}"
        )


def _rollout(
    task: TaskSpec, env: Any, policy_factory: PolicyFactory, seed: int, episode: int = 0, action_noise: float = 0.0
) -> dict[str, list] | None:
    """Play one episode; returns its per-step values by column, or ``None`` if the policy gave up.

    With ``action_noise`` the env executes a perturbed action (:class:`jat_train.noise.ActionNoise`, seeded by
    ``seed``) and the policy's own action is recorded.

    Raises:
        ValueError: an observation or action does not match its spec, a number is not finite, or an action is
            outside the action space (naming the task, the episode, its seed and the step).
    """
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    policy = policy_factory(env)
    noise = ActionNoise(env.action_space, action_noise, seed) if action_noise else None
    steps: dict[str, list] = {f.name: [] for f in task.fields}
    steps[REWARDS] = []
    while True:
        where = f"episode {episode} (seed {seed}) step {len(steps[REWARDS])}"
        for f in task.observation:
            _check_finite(task, where, f"the observation {f.name!r}", observation[f.name])
            _check_spec(task, where, f, observation[f.name])
        action = policy(observation)
        if action is None:
            return None
        _check_action(task, env, where, action)
        for f in task.observation:
            steps[f.name].append(observation[f.name])
        steps[task.action.name].append(action)
        observation, reward, terminated, truncated, _ = env.step(action if noise is None else noise(action))
        _check_finite(task, where, "the reward", reward)
        steps[REWARDS].append(float(reward))
        if terminated or truncated:
            return steps


def _encode_column(field: FieldSpec, values: list) -> Any:
    """One episode's values of a field, in the form ``datasets`` stores for :func:`value_feature`."""
    if field.dtype == "string":
        return [str(v) for v in values]
    if _is_image(field):
        import datasets

        image = datasets.Image()
        return [image.encode_example(np.asarray(v, dtype=np.uint8)) for v in values]
    return np.asarray(values, dtype=field.dtype)  # (T, *shape)


def _encode_episode(task: TaskSpec, steps: dict[str, list]) -> dict[str, Any]:
    row = {f.name: _encode_column(f, steps[f.name]) for f in task.fields}
    row[REWARDS] = np.asarray(steps[REWARDS], dtype=np.float32)  # (T,)
    return row


def _to_dataset(rows: list[dict[str, Any]], features):
    """A ``datasets.Dataset`` of encoded rows (possibly none: an empty split keeps the schema)."""
    import datasets

    if not rows:
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.Dataset.from_list(rows, features=features)


def split_sizes(episodes: int, test_fraction: float) -> tuple[int, int]:
    """``(train, test)`` episode counts: the last ``test_fraction`` (at least 1 when ``episodes >= 2``) is test."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    n_test = 0
    if episodes >= 2 and test_fraction > 0:
        n_test = min(episodes - 1, max(1, round(episodes * test_fraction)))
    return episodes - n_test, n_test


def collect(
    task: TaskSpec,
    episodes: int,
    seed: int = 0,
    policy_factory: PolicyFactory | None = None,
    *,
    test_fraction: float = 0.1,
    progress: bool = True,
    max_failures: int | None = None,
    action_noise: float = 0.0,
):
    """Collect ``episodes`` episodes of ``task`` into a ``datasets.DatasetDict`` (``train``, ``test``).

    Args:
        task: an RL task (with ``make_env``).
        episodes: number of episodes to keep.
        seed: seeds every episode's reset and action space (same seed, same data).
        policy_factory: ``factory(env) -> policy``; defaults to ``task.expert``.
        test_fraction: share of the episodes (the last ones) put in the ``test`` split.
        progress: show a tqdm progress bar.
        max_failures: episodes the policy may give up on before this fails (default ``episodes + 10``).
        action_noise: DART noise scale for the ``train`` episodes (:mod:`jat_train.noise`): the env executes a
            perturbed action, the policy's own is recorded; the ``test`` episodes are played without noise.

    Returns:
        The data set, with the features of :func:`features_for`.

    Raises:
        ValueError: the task has no env, no expert and no policy was given, an observation or action does
            not match its field spec, a value is NaN or infinite, or an action is outside the action space
            (naming the task, episode and step). Nothing is written then.
        RuntimeError: the policy gave up on more than ``max_failures`` episodes.
    """
    import datasets
    from tqdm.auto import tqdm

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if task.make_env is None or task.action is None:
        raise ValueError(f"task {task.name!r} has no environment to collect episodes from")
    factory = policy_factory or task.expert
    if factory is None:
        raise ValueError(
            f"task {task.name!r} has no offline expert; give a policy factory (jat-collect --policy module:callable)"
        )
    n_train, n_test = split_sizes(episodes, test_fraction)
    max_failures = episodes + 10 if max_failures is None else max_failures
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    failures = 0
    env = task.make_env()
    try:
        with tqdm(total=episodes, desc=task.name, unit="ep", disable=not progress) as bar:
            while len(rows) < episodes:
                noise = action_noise if len(rows) < n_train else 0.0  # the test split stays the expert's own play
                steps = _rollout(task, env, factory, int(rng.integers(2**31 - 1)), episode=len(rows) + failures,
                                 action_noise=noise)
                if steps is None:
                    failures += 1
                    warnings.warn(
                        f"{task.name}: the policy gave up on an episode ({failures} so far); dropped",
                        stacklevel=2,
                    )
                    if failures > max_failures:
                        raise RuntimeError(
                            f"{task.name}: the policy gave up on {failures} episodes; stopping"
                        )
                    continue
                rows.append(_encode_episode(task, steps))
                bar.update(1)
    finally:
        env.close()
    features = features_for(task)
    return datasets.DatasetDict(
        {
            "train": _to_dataset(rows[:n_train], features),
            "test": _to_dataset(rows[n_train:], features),
        }
    )


# -- reports and disk -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CollectSummary:
    """What one task's collection produced: where, how many episodes, their mean return and normalised score."""

    task: str
    path: str | None
    train_episodes: int
    test_episodes: int
    mean_return: float
    normalized: float | None

    def line(self) -> str:
        """One human-readable line."""
        norm = f"{self.normalized:.3f}" if self.normalized is not None else "n/a (no reference scores)"
        where = f" -> {self.path}" if self.path else ""
        return (
            f"{self.task}: {self.train_episodes} train + {self.test_episodes} test episodes{where}; "
            f"mean return {self.mean_return:.3f}, expert-normalised {norm}"
        )


def summarize(task: TaskSpec, data, path: str | None = None) -> CollectSummary:
    """Mean episode return (over both splits) and its expert-normalised score."""
    returns = [float(np.sum(r)) for split in data.values() for r in split[REWARDS]]
    mean = float(np.mean(returns)) if returns else float("nan")
    return CollectSummary(
        task=task.name,
        path=path,
        train_episodes=len(data["train"]),
        test_episodes=len(data["test"]),
        mean_return=mean,
        normalized=task.scores.normalize(mean) if task.scores is not None else None,
    )


@contextlib.contextmanager
def _quiet_datasets():
    """Silence ``datasets``' own progress bars (``jat-collect`` shows one bar per task)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def collect_to_disk(
    task: TaskSpec,
    episodes: int,
    out: str,
    seed: int = 0,
    policy_factory: PolicyFactory | None = None,
    **kwargs: Any,
) -> CollectSummary:
    """:func:`collect`, then save to ``out/<task>/``, replacing what was there.

    Atomic: the data set is written to ``out/.tmp-<task>-<random>/``, loaded back and checked (splits, rows,
    features), and only then moved in place of the old one. A collection that fails or is interrupted leaves
    the previous data set as it was (and no temporary directory). An empty split (``test`` with one episode)
    is written as one empty, typed shard, so the data set loads.

    Returns:
        The summary of what was written.

    Raises:
        UserError: ``out`` or ``out/<task>`` exists as a file.
        ValueError: see :func:`collect`.
    """
    check_destination(task, out)
    data = collect(task, episodes, seed, policy_factory, **kwargs)
    return summarize(task, data, write_data(task, data, out))


def check_destination(task: TaskSpec, out: str) -> None:
    """Refuse an ``out`` (or ``out/<task>``) that is a file, before anything is collected.

    Raises:
        UserError: naming the option and the file.
    """
    from jat_core.cli import UserError, check_output_dir

    path = local_path(task, out)
    check_output_dir(out, "--out")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out: the data set of task {task.name!r} would replace the file {path!r}")


def write_data(task: TaskSpec, data, out: str) -> str:
    """Save a task's ``DatasetDict`` to ``out/<task>/`` atomically (see :func:`collect_to_disk`); returns the path.

    Raises:
        UserError: ``out`` or ``out/<task>`` exists as a file.
        OSError: the written data set does not load back as it was.
    """
    check_destination(task, out)
    path = local_path(task, out)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(path)}-", dir=parent)
    try:
        with _quiet_datasets():
            # an empty split saved with 0 shards cannot be loaded back: give it one (empty) shard
            data.save_to_disk(tmp, num_shards={name: 1 for name, split in data.items() if len(split) == 0})
            _check_written(task, tmp, data)
        _replace_dir(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return path


def _check_written(task: TaskSpec, path: str, data) -> None:
    """Load the data set written to ``path`` back; it must hold the same splits, rows and features."""
    import datasets

    try:
        loaded = datasets.load_from_disk(path)
    except Exception as exc:
        raise OSError(f"task {task.name!r}: the data set written to {path!r} does not load back ({exc})") from exc
    for name, split in data.items():
        if name not in loaded or len(loaded[name]) != len(split) or loaded[name].features != split.features:
            raise OSError(f"task {task.name!r}: the {name!r} split written to {path!r} does not match what was collected")


def _replace_dir(new: str, path: str) -> None:
    """Move the directory ``new`` to ``path``; an existing ``path`` is set aside first and deleted only once
    ``new`` is in place (restored if the move fails), so its data are never lost."""
    if not os.path.exists(path):
        os.replace(new, path)
        return
    parent = os.path.dirname(os.path.abspath(path))
    old = tempfile.mkdtemp(prefix=f".old-{os.path.basename(path)}-", dir=parent)
    os.rmdir(old)
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- command line -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``jat-collect`` argument parser."""
    from jat_core.cli import add_debug_flag

    parser = argparse.ArgumentParser(prog="jat-collect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", required=True, help="comma-separated task and/or domain names")
    parser.add_argument("--episodes", type=int, required=True,
                        help="episodes to keep per task (samples, for tasks without an env that make their data)")
    parser.add_argument("--out", required=True, help="output root: one DIR/<task>/ per task")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument(
        "--test-fraction", type=float, default=0.1, help="share of episodes in the test split"
    )
    parser.add_argument("--plugins", default=None, help="comma-separated plugins to load (default: all)")
    parser.add_argument(
        "--policy",
        default=None,
        help="policy factory 'module:callable' (factory(env) -> policy), or 'random'; default: each task's expert",
    )
    parser.add_argument(
        "--input-dir",
        default=None,
        help="folder of input files for tasks whose samples are read from files (e.g. a folder of *.txt files; "
        "default: each task's own source)",
    )
    parser.add_argument(
        "--action-noise", type=float, default=0.0, metavar="SCALE",
        help="DART: the env executes a perturbed action while the expert's own is recorded, so the data show how "
        "it recovers from mistakes; Box spaces get Gaussian noise of SCALE x half their range, Discrete ones a "
        "random action with probability SCALE; train episodes only (default: 0, none)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_debug_flag(parser)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    from jat_core.cli import UserError, check_output_dir
    from jat_core.plugins import load_plugins

    args = build_parser().parse_args(argv)
    if args.episodes < 1:
        raise UserError(f"--episodes: expected a positive number of episodes, got {args.episodes}")
    if not 0.0 <= args.test_fraction < 1.0:
        raise UserError(f"--test-fraction: expected a value in [0, 1), got {args.test_fraction}")
    if not 0.0 <= args.action_noise <= 1.0:
        raise UserError(f"--action-noise: expected a scale in [0, 1], got {args.action_noise}")
    check_output_dir(args.out, "--out")
    registry = load_plugins(args.plugins)
    tasks = registry.select(args.tasks)
    factory = load_policy_factory(args.policy) if args.policy else None
    made = {t.name for t in tasks if (not t.is_rl or t.make_env is None) and t.samples is not None}
    not_rl = [t.name for t in tasks if (not t.is_rl or t.make_env is None) and t.samples is None]
    no_expert = [t.name for t in tasks if t.is_rl and t.make_env is not None and t.expert is None and factory is None]
    if not_rl:
        raise UserError(
            f"tasks without an environment or a local sample source cannot be collected: {', '.join(not_rl)} "
            "(their data come from the hub: jat-train --data hub)"
        )
    if args.input_dir is not None and not os.path.isdir(os.path.expanduser(args.input_dir)):
        what = "is a file" if os.path.exists(args.input_dir) else "does not exist"
        raise UserError(f"--input-dir: expected a directory of input files, {args.input_dir!r} {what}")
    if no_expert:
        raise UserError(
            f"no offline expert for {', '.join(no_expert)}; give --policy module:callable "
            "(a factory(env) -> policy) or --policy random"
        )
    for task in tasks:
        if task.name in made:
            from jat_train.samples import collect_samples_to_disk

            summary = collect_samples_to_disk(
                task, args.episodes, args.out, seed=args.seed, input_dir=args.input_dir,
                test_fraction=args.test_fraction, progress=not args.no_progress,
            )
            print(summary.line(), flush=True)
            continue
        summary = collect_to_disk(
            task,
            args.episodes,
            args.out,
            seed=args.seed,
            policy_factory=factory,
            test_fraction=args.test_fraction,
            progress=not args.no_progress,
            action_noise=args.action_noise,
        )
        print(summary.line(), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jat-collect``; returns the exit code (2 for bad arguments, policies or data; see
    :func:`jat_core.cli.run_console_script`)."""
    from jat_core.cli import run_console_script

    return run_console_script("jat-collect", _main, argv)
