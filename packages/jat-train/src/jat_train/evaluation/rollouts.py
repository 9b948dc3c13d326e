"""Rollouts: exactly ``episodes`` episodes of a task in a gymnasium vector env, with a batched policy.

:func:`run_episodes` runs them in a vector env of ``num_envs`` envs (fewer when ``episodes`` is smaller,
:func:`make_vector_env`), with a batched policy (:mod:`jat_train.evaluation.policies`): a model's agent, the task's expert
or a random policy.

Determinism: episode ``j`` of a task (``0 <= j < episodes``) always resets its env with seed ``seed + j`` (so env
``i``'s first episode has seed ``seed + i``), and env ``i`` always runs episodes ``i, i + K, i + 2K, ...``
(:func:`episode_schedule`). The vector env's autoreset is disabled and each finished env is reset here, with its
next episode's seed. An env that has run its share is reset with a seed beyond the range and its episodes are
ignored. The returns of the random and expert policies therefore depend only on ``seed``, not on ``num_envs`` or
on which env finishes first; a model's agent keeps one context per env, so its returns depend on the batch only
through numerics.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from jat_core.specs import TaskSpec
from tqdm.auto import tqdm

from jat_train.evaluation.policies import BatchPolicy, PolicyLike, make_policy

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
        video_dir: where :class:`~jat_train.evaluation.video.RecordEpisodeGif` writes; ``None``: no recording.
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
                from jat_train.evaluation.video import RecordEpisodeGif

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
            returning a :class:`~jat_train.evaluation.policies.BatchPolicy`.
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
