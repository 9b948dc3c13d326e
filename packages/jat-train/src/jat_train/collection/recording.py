"""Recording episodes: play a policy in a task's env, check every value, keep the episodes as data-set rows.

:func:`collect` plays ``episodes`` episodes of a task and returns them as a ``datasets.DatasetDict`` in the schema
of :mod:`jat_train.collection.schema`. Nothing here knows a domain: the env comes from ``TaskSpec.make_env``, the policy
from ``TaskSpec.expert`` or a user factory, and the checks from the task's field specs.

Policies. A policy factory has the signature of ``TaskSpec.expert``: ``factory(env) -> policy`` with
``policy(observation_dict) -> action``. A new policy is requested for every episode, right after ``env.reset``,
so stateful experts (the BabyAI bot plans on the freshly reset env) start clean. A policy returns ``None`` when
it gives up on an episode (an expert's loop guard tripped): the episode is dropped with a warning and another
one is played in its place.

Checks. Every observation, action and reward is checked before anything is written: shapes and dtypes
against the field specs, numbers finite (a policy returning NaN is refused, naming the task, episode and step),
actions inside the env's action space.

Action noise (DART). With ``action_noise`` the env executes a perturbed action (:mod:`jat_train.collection.noise`) while
the policy's own action is recorded, in the ``train`` episodes only: the ``test`` split stays the policy's own
play.

Determinism. Episode ``k`` is reset with a seed drawn from ``numpy.random.default_rng(seed)``, and the action
space is seeded with it too, so the same seed gives the same data, bit for bit.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from jat_core.specs import FieldSpec, TaskSpec, check_field_value

from jat_train.collection.noise import ActionNoise
from jat_train.collection.schema import encode_episode, split_dataset, split_sizes
from jat_train.data import REWARDS

PolicyFactory = Callable[[Any], Callable[[dict], Any]]


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


# -- checks -------------------------------------------------------------------------------------------------
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


# -- rollouts -----------------------------------------------------------------------------------------------
def _rollout(
    task: TaskSpec, env: Any, policy_factory: PolicyFactory, seed: int, episode: int = 0, action_noise: float = 0.0
) -> dict[str, list] | None:
    """Play one episode; returns its per-step values by column, or ``None`` if the policy gave up.

    With ``action_noise`` the env executes a perturbed action (:class:`jat_train.collection.noise.ActionNoise`, seeded by
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
    max_steps: int | None = None,
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
        action_noise: DART noise scale for the ``train`` episodes (:mod:`jat_train.collection.noise`): the env executes a
            perturbed action, the policy's own is recorded; the ``test`` episodes are played without noise.
        max_steps: a budget of env steps (default none): each split stops early once its episodes hold its share
            of it (``test_fraction`` for ``test``); the episode that crosses the budget is kept, and a split that
            should have episodes keeps at least one. Long-episode tasks then cost about what short ones do.

    Returns:
        The data set, with the features of :func:`jat_train.collection.schema.features_for`.

    Raises:
        ValueError: the task has no env, no expert and no policy was given, an observation or action does
            not match its field spec, a value is NaN or infinite, or an action is outside the action space
            (naming the task, episode and step). Nothing is written then.
        RuntimeError: the policy gave up on more than ``max_failures`` episodes.
    """
    from tqdm.auto import tqdm

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if task.make_env is None or task.action is None:
        raise ValueError(f"task {task.name!r} has no environment to collect episodes from")
    factory = policy_factory or task.expert
    if factory is None:
        raise ValueError(
            f"task {task.name!r} has no offline expert; give a policy factory (jat-collect --policy module:callable)"
        )
    n_train, n_test = split_sizes(episodes, test_fraction)
    budgets = (None, None) if max_steps is None else (max_steps * (1 - test_fraction), max_steps * test_fraction)
    max_failures = episodes + 10 if max_failures is None else max_failures
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    failures = 0
    env = task.make_env()
    try:
        with tqdm(total=episodes, desc=task.name, unit="ep", disable=not progress) as bar:
            # the train split (played with the DART noise), then the test split (the policy's own play)
            kept_per_split = []
            for wanted, budget, noise in ((n_train, budgets[0], action_noise), (n_test, budgets[1], 0.0)):
                kept, steps_kept = 0, 0
                while kept < wanted and (budget is None or kept == 0 or steps_kept < budget):
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
                    rows.append(encode_episode(task, steps))
                    kept, steps_kept = kept + 1, steps_kept + len(steps[REWARDS])
                    bar.update(1)
                kept_per_split.append(kept)
    finally:
        env.close()
    return split_dataset(task, rows, kept_per_split[0])
