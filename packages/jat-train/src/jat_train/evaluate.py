"""Evaluation: roll out a policy in vector envs, score the episodes, aggregate per domain.

:func:`evaluate` is what ``jat-eval`` and the training loop's periodic evaluation call::

    results = evaluate(model, tasks, episodes=10, num_envs=4, seed=0, out="runs/eval")

For each task it runs exactly ``episodes`` episodes in a gymnasium vector env of ``num_envs`` envs (fewer when
``episodes`` is smaller), with a batched policy (:mod:`jat_train.policies`): a model's agent, the task's expert
or a random policy.

Determinism: episode ``j`` of a task (``0 <= j < episodes``) always resets its env with seed ``seed + j`` (so env
``i``'s first episode has seed ``seed + i``), and env ``i`` always runs episodes ``i, i + K, i + 2K, ...``. The
vector env's autoreset is disabled and each finished env is reset here, with its next episode's seed. An env
that has run its share is reset with a seed beyond the range and its episodes are ignored. The returns of the
random and expert policies therefore depend only on ``seed``, not on ``num_envs`` or on which env finishes
first; a model's agent keeps one context per env, so its returns depend on the batch only through numerics.

Results (:func:`summarize`): per task the raw mean and std (population) of the episode returns, the
expert-normalised score of the mean, the human-normalised score where the task's spec has a human score, and
the number of episodes; per domain and over all tasks the IQM of the per-task normalised scores with a 95%
stratified bootstrap interval (:mod:`jat_train.scores`). :func:`write_report_files` writes ``results.json``
and the plots.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from jat_core.specs import TaskSpec
from tqdm.auto import tqdm

from jat_train.policies import BatchPolicy, PolicyLike, make_policy
from jat_train.scores import DEFAULT_REPS, stratified_bootstrap_iqm

logger = logging.getLogger(__name__)

#: Episodes recorded per task with ``video=True``.
VIDEO_EPISODES = 2
VECTOR_KINDS = ("sync", "async")


def episode_schedule(episodes: int, num_envs: int) -> list[list[int]]:
    """Which episodes each env runs: env ``i`` runs ``i, i + K, i + 2K, ... < episodes``.

    Args:
        episodes: episodes to run in total (> 0).
        num_envs: envs in the batch, ``K`` (> 0).

    Returns:
        One list of episode indices per env (empty for envs beyond ``episodes``).
    """
    if episodes <= 0 or num_envs <= 0:
        raise ValueError(
            f"episodes and num_envs must be positive, got episodes={episodes}, num_envs={num_envs}"
        )
    return [list(range(i, episodes, num_envs)) for i in range(num_envs)]


def _accepts(fn: Any, name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (explicitly or through ``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def make_vector_env(
    task: TaskSpec,
    num_envs: int,
    *,
    vector: str = "sync",
    max_steps: int | None = None,
    video_dir: str | None = None,
    video_ids: Sequence[Sequence[int]] = (),
) -> gym.vector.VectorEnv:
    """A vector env of ``num_envs`` copies of ``task``'s env, autoreset disabled.

    Args:
        task: a task with ``make_env``.
        num_envs: envs in the batch.
        vector: ``"sync"`` (``SyncVectorEnv``, needed by the expert policy) or ``"async"`` (one process per env).
        max_steps: optional cap on episode length (a ``TimeLimit`` truncation), on top of the env's own.
        video_dir: where :class:`~jat_train.video.RecordEpisodeGif` writes; ``None``: no recording.
        video_ids: per env, the global episode ids to record (envs with none are not rendered).

    Returns:
        The vector env (the caller closes it).
    """
    if task.make_env is None:
        raise ValueError(f"task {task.name!r} has no environment (make_env is None): it cannot be evaluated")
    if vector not in VECTOR_KINDS:
        raise ValueError(f"vector must be one of {VECTOR_KINDS}, got {vector!r}")

    def thunk(i: int):
        ids = list(video_ids[i]) if video_dir is not None and i < len(video_ids) else []

        def make() -> gym.Env:
            env = task.make_env(render_mode="rgb_array") if ids else task.make_env()
            if max_steps is not None:
                env = gym.wrappers.TimeLimit(env, max_episode_steps=max_steps)
            if ids:
                from jat_train.video import RecordEpisodeGif

                env = RecordEpisodeGif(env, video_dir, ids)
            return env

        return make

    fns = [thunk(i) for i in range(num_envs)]
    autoreset = gym.vector.AutoresetMode.DISABLED
    if vector == "async":
        # Observations travel through pipes: shared memory cannot hold strings outside a Text space's charset.
        return gym.vector.AsyncVectorEnv(fns, shared_memory=False, autoreset_mode=autoreset)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=autoreset)


def run_episodes(
    task: TaskSpec,
    policy: PolicyLike,
    episodes: int,
    num_envs: int = 1,
    seed: int = 0,
    *,
    vector: str = "sync",
    max_steps: int | None = None,
    video_dir: str | None = None,
    video_episodes: int = VIDEO_EPISODES,
    progress: bool = True,
    agent_kwargs: dict[str, Any] | None = None,
) -> dict[str, list]:
    """Run exactly ``episodes`` episodes of ``task`` with a batched policy.

    Args:
        task: the task (with ``make_env``).
        policy: ``"random"``, ``"expert"``, a model (``JatModel``), or a factory ``f(task, envs)``
            returning a :class:`~jat_train.policies.BatchPolicy`.
        episodes: number of episodes.
        num_envs: envs run side by side (capped at ``episodes``).
        seed: episode ``j`` is seeded ``seed + j`` (see the module docstring).
        vector: ``"sync"`` or ``"async"``.
        max_steps: optional cap on episode length.
        video_dir: record the first ``video_episodes`` episodes as GIFs there; ``None``: no video.
        video_episodes: how many episodes to record.
        progress: show a tqdm bar.
        agent_kwargs: passed to the model's agent (models only).

    Returns:
        ``{"returns": [...], "lengths": [...]}``, indexed by episode (``episodes`` entries each).
    """
    k = min(num_envs, episodes)
    schedule = episode_schedule(episodes, k)
    video_ids = [[j for j in s if j < video_episodes] for s in schedule]
    if video_dir is not None and not _accepts(task.make_env, "render_mode"):
        logger.warning("task %s: make_env takes no render_mode; no video", task.name)
        video_dir = None
    envs = make_vector_env(
        task, k, vector=vector, max_steps=max_steps, video_dir=video_dir, video_ids=video_ids
    )
    try:
        bound: BatchPolicy = make_policy(policy, task, envs, **(agent_kwargs or {}))
        return _rollout(envs, bound, schedule, seed, task.name, progress)
    finally:
        envs.close()


def _rollout(
    envs: gym.vector.VectorEnv,
    policy: BatchPolicy,
    schedule: list[list[int]],
    seed: int,
    name: str,
    progress: bool,
) -> dict[str, list]:
    """The stepping loop of :func:`run_episodes` (one env per schedule entry)."""
    k = len(schedule)
    episodes = sum(len(s) for s in schedule)
    position = [0] * k  # index into schedule[i] of the episode env i is running
    current = [s[0] for s in schedule]  # (K,) global episode id, or -1 once env i has run its share
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    ep_return = np.zeros(k)  # (K,)
    ep_length = np.zeros(k, dtype=np.int64)  # (K,)
    spare_seed = seed + episodes  # seeds for envs that have run their share (their episodes are ignored)

    obs, _ = envs.reset(seed=[seed + j for j in current])
    policy.reset(k, [seed + j for j in current])
    rewards_in = np.zeros(k)  # (K,) reward received before the current observation
    bar = tqdm(total=episodes, desc=name, unit="ep", leave=False, disable=not progress)
    done_count = 0
    while done_count < episodes:
        actions = policy.act(obs, rewards_in)
        obs, reward, terminated, truncated, _ = envs.step(actions)
        reward = np.asarray(reward, dtype=np.float64)
        ep_return += reward
        ep_length += 1
        rewards_in = reward.copy()
        finished = np.logical_or(terminated, truncated)  # (K,)
        if not finished.any():
            continue
        seeds: list[int | None] = [None] * k
        for i in np.flatnonzero(finished):
            if current[i] >= 0:
                returns[current[i]], lengths[current[i]] = ep_return[i], ep_length[i]
                done_count += 1
                bar.update(1)
                position[i] += 1
                current[i] = schedule[i][position[i]] if position[i] < len(schedule[i]) else -1
            if current[i] >= 0:
                seeds[i] = seed + current[i]
            else:
                seeds[i], spare_seed = spare_seed, spare_seed + 1
            ep_return[i], ep_length[i], rewards_in[i] = 0.0, 0, 0.0
        if done_count == episodes:
            break
        obs, _ = envs.reset(seed=seeds, options={"reset_mask": finished})
        for i in np.flatnonzero(finished):
            policy.reset_env(int(i), seeds[i])
    bar.close()
    return {"returns": returns.tolist(), "lengths": lengths.tolist()}


def task_scores(task: TaskSpec, returns: Sequence[float]) -> dict[str, Any]:
    """Per-task entry of the results: raw mean/std, normalised scores, episode count and returns.

    ``normalized`` is ``None`` when the task has no reference scores; ``human_normalized`` is present only when
    its spec has a human score.
    """
    r = np.asarray(returns, dtype=np.float64)
    mean = float(r.mean())
    out: dict[str, Any] = {
        "domain": task.domain,
        "mean": mean,
        "std": float(r.std()),
        "normalized": task.scores.normalize(mean) if task.scores is not None else None,
        "episodes": int(r.size),
    }
    if task.scores is not None and task.scores.human is not None:
        out["human_normalized"] = task.scores.human_normalize(mean)
    out["episode_returns"] = r.tolist()
    return out


def _interval(per_task: list[list[float]], reps: int, seed: int) -> dict[str, float | None]:
    if not per_task:
        return {"iqm": None, "ci_low": None, "ci_high": None}
    return stratified_bootstrap_iqm(per_task, reps=reps, seed=seed).as_dict()


def summarize(
    tasks: Sequence[TaskSpec],
    returns: dict[str, Sequence[float]],
    *,
    seed: int = 0,
    reps: int = DEFAULT_REPS,
) -> dict[str, Any]:
    """Build the results dict from per-episode returns.

    Args:
        tasks: the evaluated tasks (their ``scores`` and ``domain``).
        returns: per task name, its episode returns.
        seed: seed of the bootstrap.
        reps: bootstrap replicates.

    Returns:
        ``{"tasks": {name: {...}}, "domains": {domain: {"iqm", "ci_low", "ci_high", "num_tasks"}},
        "all": {...}, "bootstrap": {...}}``. Aggregates are over tasks with reference scores; where some tasks
        have a human score, ``human_iqm``/``human_ci_low``/``human_ci_high`` aggregate those the same way.
    """
    by_name = {t.name: t for t in tasks}
    results: dict[str, Any] = {"tasks": {}, "domains": {}, "all": {}}
    norm: dict[str, list[float]] = {}  # per task: per-episode expert-normalised returns
    human: dict[str, list[float]] = {}
    for name, r in returns.items():
        task = by_name[name]
        results["tasks"][name] = task_scores(task, r)
        if task.scores is not None:
            norm[name] = [task.scores.normalize(x) for x in r]
            if task.scores.human is not None:
                human[name] = [task.scores.human_normalize(x) for x in r]

    def aggregate(names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = _interval([norm[n] for n in names if n in norm], reps, seed)
        out["num_tasks"] = sum(n in norm for n in names)
        humans = [human[n] for n in names if n in human]
        if humans:
            h = _interval(humans, reps, seed)
            out.update({f"human_{key}": v for key, v in h.items()})
        return out

    domains: dict[str, list[str]] = {}
    for name in returns:
        domains.setdefault(by_name[name].domain, []).append(name)
    for domain, names in domains.items():
        if any(n in norm for n in names):
            results["domains"][domain] = aggregate(names)
    results["all"] = aggregate(list(returns))
    results["bootstrap"] = {
        "reps": reps,
        "confidence": 0.95,
        "seed": seed,
        "method": "IQM over tasks of per-task mean normalised return; percentile CI of a bootstrap that "
        "resamples each task's episodes with replacement (stratified by task)",
    }
    return results


def policy_name(policy: PolicyLike) -> str:
    """A short name for the results file: ``"random"``, ``"expert"``, or the model/factory's class name."""
    if isinstance(policy, str):
        return policy
    return getattr(policy, "name_or_path", None) or type(policy).__name__


def evaluate(
    policy: PolicyLike,
    tasks: Sequence[TaskSpec],
    episodes: int,
    num_envs: int = 1,
    seed: int = 0,
    out: str | None = None,
    video: bool = False,
    progress: bool = True,
    *,
    vector: str = "sync",
    max_steps: int | None = None,
    reps: int = DEFAULT_REPS,
    video_episodes: int = VIDEO_EPISODES,
    agent_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate a policy on tasks and return the results dict (see :func:`summarize`).

    Args:
        policy: a model (``JatModel``), ``"random"``, ``"expert"``, or a factory
            ``f(task, envs) -> BatchPolicy``.
        tasks: tasks to evaluate; each needs ``make_env``.
        episodes: episodes per task.
        num_envs: envs run side by side per task.
        seed: seed of the episodes and of the bootstrap.
        out: directory for ``results.json``, the plots and the videos; ``None``: write nothing.
        video: record the first ``video_episodes`` episodes of each task to ``out/videos/<task>/``.
        progress: show tqdm bars and a line per task.
        vector: ``"sync"`` or ``"async"`` vector envs.
        max_steps: optional cap on episode length.
        reps: bootstrap replicates.
        video_episodes: episodes recorded per task with ``video``.
        agent_kwargs: passed to the model's agent (e.g. a tokenizer).

    Returns:
        The results dict, plus ``policy``, ``seed``, ``num_envs`` and (with video) ``videos``.
    """
    if video and out is None:
        raise ValueError("evaluate: video=True needs an output directory (out)")
    if not tasks:
        raise ValueError("evaluate: no task to evaluate")
    returns: dict[str, list[float]] = {}
    lengths: dict[str, list[int]] = {}
    for task in tasks:
        video_dir = os.path.join(out, "videos", task.name) if video and out is not None else None
        run = run_episodes(
            task,
            policy,
            episodes,
            num_envs,
            seed,
            vector=vector,
            max_steps=max_steps,
            video_dir=video_dir,
            video_episodes=video_episodes,
            progress=progress,
            agent_kwargs=agent_kwargs,
        )
        returns[task.name], lengths[task.name] = run["returns"], run["lengths"]
        if progress:
            line = _task_line(task, run["returns"])
            tqdm.write(line)
    results = summarize(tasks, returns, seed=seed, reps=reps)
    for name, ls in lengths.items():
        results["tasks"][name]["episode_lengths"] = ls
    results.update({"policy": policy_name(policy), "seed": seed, "num_envs": num_envs})
    if out is not None:
        write_report_files(results, out)
    return results


def _task_line(task: TaskSpec, returns: Sequence[float]) -> str:
    s = task_scores(task, returns)
    line = f"{task.name}: return {s['mean']:.3f} ± {s['std']:.3f} over {s['episodes']} episodes"
    if s["normalized"] is not None:
        line += f", normalised {s['normalized']:.3f}"
    if s.get("human_normalized") is not None:
        line += f", human-normalised {s['human_normalized']:.3f}"
    return line


def write_report_files(results: dict[str, Any], out: str) -> list[str]:
    """Write ``out/results.json`` and the plots (``domains.png``, ``tasks.png``; ``human.png`` if relevant).

    Returns:
        The paths written.
    """
    from jat_train.plots import plot_domains, plot_tasks

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "results.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)
    written = [path]
    if any(r.get("normalized") is not None for r in results["tasks"].values()):
        written.append(plot_domains(results, os.path.join(out, "domains.png")))
        written.append(plot_tasks(results, os.path.join(out, "tasks.png")))
    if any(r.get("human_normalized") is not None for r in results["tasks"].values()):
        written.append(plot_tasks(results, os.path.join(out, "human.png"), key="human_normalized"))
    return written


# -- jat-eval ------------------------------------------------------------------------------------------------


def build_parser():
    """The ``jat-eval`` argument parser."""
    import argparse

    from jat_core.cli import add_debug_flag

    p = argparse.ArgumentParser(
        prog="jat-eval",
        description="Evaluate a JAT model (or a random / expert policy) on tasks: scores, IQM with 95% "
        "bootstrap CIs per domain, plots and optional videos in OUT/.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--model", metavar="DIR", help="model directory (JatModel.save_pretrained, tokenizer beside)"
    )
    who.add_argument("--policy", choices=["random", "expert"], help="evaluate a reference policy instead")
    p.add_argument(
        "--tasks", default=None, help="comma-separated task and/or domain names (default: all with an env)"
    )
    p.add_argument("--episodes", type=int, default=10, help="episodes per task (default 10)")
    p.add_argument("--num-envs", type=int, default=1, help="envs run side by side per task (default 1)")
    p.add_argument("--out", required=True, help="output directory (results.json, PNG plots, videos/)")
    p.add_argument("--seed", type=int, default=0, help="episode j of a task is seeded SEED + j (default 0)")
    p.add_argument(
        "--plugins", default=None, help="comma-separated plugin names (default: all, or $JAT_PLUGINS)"
    )
    p.add_argument("--video", action="store_true", help="record the first episodes of each task as GIFs")
    p.add_argument("--video-episodes", type=int, default=VIDEO_EPISODES, help="episodes recorded per task")
    p.add_argument("--max-steps-per-episode", type=int, default=None, help="truncate longer episodes")
    p.add_argument("--vector", choices=VECTOR_KINDS, default="sync", help="vector env kind (default sync)")
    p.add_argument("--reps", type=int, default=DEFAULT_REPS, help="bootstrap replicates (default 2000)")
    p.add_argument("--device", default=None, help="torch device of the model (default: cuda if available)")
    p.add_argument("--dtype", choices=list(DTYPES), default="fp32",
                   help="weights of the model that acts (bf16: about 2x faster per action on CPU; default fp32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="the local data the model was trained on (jat-collect's --out): adds each task's data "
                   "return and data-normalised score, (R - random) / (data - random)")
    add_debug_flag(p)
    return p


#: ``--dtype`` choices: the weights (and so the agent's cache) of the model that acts
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def load_model(path: str, device: str | None = None, dtype: str = "fp32") -> tuple[Any, dict[str, Any]]:
    """Load a saved model for evaluation, and the keyword arguments its agent needs.

    ``dtype="bf16"`` acts with bf16 weights: half the bytes streamed per step (about twice as fast per action at
    jat-small on one CPU thread); ``bench/agent.py --dtype bf16`` reports how often its actions equal fp32's.

    The tokenizer saved beside the model (if any) is passed to the agent as ``tokenizer`` (string fields such
    as a mission are tokenized with it).

    Returns:
        ``(model, agent_kwargs)``.

    Raises:
        UserError: a local-looking ``path`` that does not exist, or a model or tokenizer that does not load
            (missing, damaged or unexpected files: the message keeps what ``from_pretrained`` said).
    """
    import torch
    from jat_core.cli import UserError, check_source
    from jat_core.model import JatModel

    path = check_source(path, "--model")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = JatModel.from_pretrained(path)
    except Exception as exc:  # strict loading: missing/unexpected weights, damaged files, unknown config fields
        raise UserError(f"--model {path!r}: cannot load the model ({type(exc).__name__}: {exc})") from exc
    model = model.to(device=device, dtype=getattr(torch, DTYPES[dtype])).eval()
    agent_kwargs: dict[str, Any] = {}
    has_tokenizer = any(
        os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "tokenizer_config.json")
    )
    from jat_core.agent import JatAgent

    if has_tokenizer and _accepts(getattr(model, "agent", JatAgent), "tokenizer"):
        from jat_core.tokenizer import load_tokenizer

        try:
            agent_kwargs["tokenizer"] = load_tokenizer(path)
        except Exception as exc:
            raise UserError(f"--model {path!r}: cannot load its tokenizer ({type(exc).__name__}: {exc})") from exc
    return model, agent_kwargs


def _main(argv: list[str] | None) -> int:
    from jat_core.cli import UserError, check_output_dir, check_source
    from jat_core.plugins import load_plugins

    args = build_parser().parse_args(argv)
    for name in ("episodes", "num_envs", "video_episodes", "reps"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.max_steps_per_episode is not None and args.max_steps_per_episode <= 0:
        raise UserError(f"--max-steps-per-episode must be positive, got {args.max_steps_per_episode}")
    check_output_dir(args.out, "--out")
    if args.model is not None:
        args.model = check_source(args.model, "--model")
    registry = load_plugins(args.plugins)
    selected = registry.select(args.tasks)
    tasks = [t for t in selected if t.make_env is not None]
    skipped = [t.name for t in selected if t.make_env is None]
    if skipped:
        logger.warning("skipping %d task(s) without an environment: %s", len(skipped), ", ".join(skipped))
    if args.policy == "expert":
        no_expert = [t.name for t in tasks if t.expert is None]
        if no_expert:
            logger.warning("skipping %d task(s) without an expert: %s", len(no_expert), ", ".join(no_expert))
        tasks = [t for t in tasks if t.expert is not None]
    if not tasks:
        raise UserError(f"no task to evaluate among {args.tasks or 'all tasks'}")

    if args.model is not None:
        policy, agent_kwargs = load_model(args.model, args.device, args.dtype)
    else:
        policy, agent_kwargs = args.policy, {}
    results = evaluate(
        policy,
        tasks,
        args.episodes,
        args.num_envs,
        args.seed,
        out=args.out,
        video=args.video,
        progress=not args.no_progress,
        vector=args.vector,
        max_steps=args.max_steps_per_episode,
        reps=args.reps,
        video_episodes=args.video_episodes,
        agent_kwargs=agent_kwargs,
    )
    if args.data is not None:
        from jat_train.datascore import add_data_scores

        add_data_scores(results, tasks, args.data)
    if args.model is not None:
        results["policy"] = args.model
    if args.model is not None or args.data is not None:
        write_report_files(results, args.out)
    for name, agg in [*results["domains"].items(), ("all", results["all"])]:
        if agg.get("iqm") is not None:
            data = agg.get("data_normalized_iqm")
            print(
                f"{name}: IQM {agg['iqm']:.3f} [{agg['ci_low']:.3f}, {agg['ci_high']:.3f}] ({agg['num_tasks']} tasks)"
                + ("" if data is None else f"; data-normalised IQM {data:.3f}")
            )
    print(f"results in {os.path.join(args.out, 'results.json')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``jat-eval``: parse ``argv``, evaluate, write ``OUT/``, print the aggregates. Returns the exit code (2: bad
    input, or a model that does not load; see :func:`jat_core.cli.run_console_script`)."""
    from jat_core.cli import run_console_script

    return run_console_script("jat-eval", _main, argv)
