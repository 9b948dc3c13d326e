"""Meta-World envs as the JAT data uses them: one task (MT1), goal observable, 100-step episodes.

``gymnasium.make("Meta-World/MT1", env_name="<name>-v3", seed=..., max_episode_steps=100)``: each reset draws
one of the task's 50 goal positions (generated from ``seed``; ``reset(seed=s)`` picks it from ``s``), the
observation is the 39-float vector (hand, gripper, objects, goal) as ``{"continuous_observations": float32
(39,)}``, actions are 4 floats in [-1, 1]. The reference limited episodes to 100 steps (enough to solve the tasks); so does this env. Episodes end by
truncation only (no termination on success), as in the reference data.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from jat_envs.common import continuous_dict_observations

MAX_EPISODE_STEPS = 100
OBS_SIZE = 39
ACTION_SIZE = 4


def _seeded_goal_wrapper():
    import gymnasium as gym

    class SeededGoal(gym.Wrapper):
        """Make ``reset(seed=s)`` pick the goal from ``s``.

        Meta-World draws the episode's goal from the env's generator *before* ``reset`` reseeds it, so without
        this the first episode's goal ignores the reset seed (every collection would start alike).
        """

        def reset(self, *, seed=None, options=None):
            if seed is not None:
                self.env.unwrapped.seed(seed)
            return self.env.reset(seed=seed, options=options)

    return SeededGoal


def make_env(env_name: str, *, seed: int | None = 0, **kwargs: Any):
    """Make one Meta-World env (see the module docstring).

    The task's 50 goal positions are drawn once per ``(env_name, seed)`` in a process (:func:`_benchmark`) and
    shared by every env made after: ``metaworld.MT1`` draws them by resetting a fresh env 50 times, which costs far
    more than an episode, so building each env from them would make N envs of a task cost N draws. The env is
    then wrapped exactly as ``gymnasium.make("Meta-World/MT1", env_name=..., seed=...)`` wraps it (metaworld's
    ``make_mt_envs``), with the same public pieces; tests/envs/test_metaworld_env.py checks that both give the same
    episodes. Other ``kwargs`` than ``render_mode`` and ``max_episode_steps`` go through ``gymnasium.make``.

    Args:
        env_name: the Meta-World 3.x name, e.g. ``"reach-v3"``.
        seed: seeds the 50 goal positions and the env's generator, so that the same calls give the same
            episodes; ``None`` leaves them to global randomness.
        **kwargs: passed to ``gymnasium.make`` (``render_mode``, ``max_episode_steps``...).

    Returns:
        The wrapped gymnasium env.
    """
    import gymnasium as gym

    kwargs.setdefault("max_episode_steps", MAX_EPISODE_STEPS)
    if seed is None or set(kwargs) - {"max_episode_steps", "render_mode"}:
        env = _make_with_gymnasium(env_name, seed=seed, **kwargs)
    else:
        env = _build(env_name, seed, kwargs.get("render_mode"))
        env = gym.wrappers.TimeLimit(gym.wrappers.OrderEnforcing(env), kwargs["max_episode_steps"])
        # the spec gymnasium.make records: who reads the env's name from it (the scripted expert) finds it
        spec = gym.spec("Meta-World/MT1")
        env.unwrapped.spec = dataclasses.replace(spec, kwargs={**spec.kwargs, "env_name": env_name, "seed": seed})
    # the same answers as Meta-World's own touching_object, without a Python object per contact (see below)
    env.unwrapped.touching_object = functools.partial(touching_object, env.unwrapped)
    return continuous_dict_observations(_seeded_goal_wrapper()(env))


def touching_object(env: Any, object_geom_id: int) -> bool:
    """``SawyerXYZEnv.touching_object`` of ``env`` (unwrapped): whether both gripper pads push on the object.

    Meta-World's method builds a Python object for every contact of the step, twice, which costs a good share of
    a step on the tasks whose reward asks for it; this reads the contact arrays once. The forces are summed in
    contact order from 0, as Meta-World sums them, so the answer is the same, not only close.

    Args:
        env: the unwrapped Meta-World env.
        object_geom_id: the object's geom id.

    Returns:
        Whether both pads' contact forces with the object are positive.
    """
    import numpy as np

    data = env.data
    contacts = data.contact
    geom1, geom2 = contacts.geom1, contacts.geom2
    with_object = (geom1 == object_geom_id) | (geom2 == object_geom_id)
    forces = []
    for pad in ("leftpad_geom", "rightpad_geom"):
        pad_id = data.geom(pad).id
        touching = with_object & ((geom1 == pad_id) | (geom2 == pad_id))
        forces.append(sum(data.efc_force[contacts.efc_address[np.flatnonzero(touching)]].tolist()))
    return 0 < forces[0] and 0 < forces[1]


def _make_with_gymnasium(env_name: str, *, seed: int | None, **kwargs: Any):
    """``gymnasium.make("Meta-World/MT1", ...)``: the env with metaworld's own entry point (draws its goals)."""
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the Meta-World ids)

    # Meta-World's observation space bounds the goal to 0 while the goal is observed: gymnasium's passive checker
    # would warn on every env made; the observations are checked against the task's field specs instead.
    kwargs.setdefault("disable_env_checker", True)
    return gym.make("Meta-World/MT1", env_name=env_name, seed=seed, **kwargs)


@functools.cache
def _benchmark(env_name: str, seed: int):
    """``metaworld.MT1(env_name, seed)``: the task's env class and its 50 goal positions (drawn once)."""
    import metaworld

    return metaworld.MT1(env_name, seed=seed)


def _build(env_name: str, seed: int, render_mode: str | None):
    """The env and the wrappers metaworld's ``make_mt_envs`` puts around it for one MT1 task (no success
    termination, random goal per reset), from the cached :func:`_benchmark`."""
    import gymnasium as gym
    from metaworld.wrappers import AutoTerminateOnSuccessWrapper, CheckpointWrapper, RandomTaskSelectWrapper

    bench = _benchmark(env_name, seed)
    env_cls = bench.train_classes[env_name]
    env = env_cls(reward_function_version="v2", render_mode=render_mode, camera_name=None, camera_id=None,
                  width=480, height=480)
    env.seed(seed)
    env = gym.wrappers.TimeLimit(env, env.max_path_length)
    env = AutoTerminateOnSuccessWrapper(env)
    env.toggle_terminate_on_success(False)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = RandomTaskSelectWrapper(env, list(bench.train_tasks))
    env = CheckpointWrapper(env, f"{env_cls}_None")
    env.action_space.seed(seed)
    return env
