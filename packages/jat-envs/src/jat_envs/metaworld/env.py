"""Meta-World envs as the JAT data uses them: one task (MT1), goal observable, 100-step episodes.

``gymnasium.make("Meta-World/MT1", env_name="<name>-v3", seed=..., max_episode_steps=100)``: each reset draws
one of the task's 50 goal positions (generated from ``seed``; ``reset(seed=s)`` picks it from ``s``), the
observation is the 39-float vector (hand, gripper, objects, goal) as ``{"continuous_observations": float32
(39,)}``, actions are 4 floats in [-1, 1]. The reference limited episodes to 100 steps (enough to solve the tasks); so does this env. Episodes end by
truncation only (no termination on success), as in the reference data.
"""

from __future__ import annotations

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

    Args:
        env_name: the Meta-World 3.x name, e.g. ``"reach-v3"``.
        seed: seeds the 50 goal positions and the env's generator, so that the same calls give the same
            episodes; ``None`` leaves them to global randomness.
        **kwargs: passed to ``gymnasium.make`` (``render_mode``, ``max_episode_steps``...).

    Returns:
        The wrapped gymnasium env.
    """
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the Meta-World ids)

    kwargs.setdefault("max_episode_steps", MAX_EPISODE_STEPS)
    # Meta-World's observation space bounds the goal to 0 while the goal is observed: gymnasium's passive checker
    # would warn on every env made; the observations are checked against the task's field specs instead.
    kwargs.setdefault("disable_env_checker", True)
    env = gym.make("Meta-World/MT1", env_name=env_name, seed=seed, **kwargs)
    return continuous_dict_observations(_seeded_goal_wrapper()(env))
