"""BabyAI envs with the observation the JAT data stores.

Each step gives ``{"discrete_observations": int64 (148,), "text_observations": str}``: the agent's direction
followed by its 7x7x3 symbolic view flattened (``[direction] + image.flatten()``, as the reference), and the
mission string. Rewards are floats. Actions are minigrid's 7 actions.
"""

from __future__ import annotations

import contextlib
import functools
import io
from typing import Any

VIEW = 7  # the agent sees a 7x7 window
N_DIRECTIONS = 4
#: values of the three view channels in minigrid: object (11 kinds), colour (6), state (3)
CHANNEL_VALUES = (11, 6, 3)
N_GRID = 1 + VIEW * VIEW * len(CHANNEL_VALUES)  # 148
#: distinct values a grid integer can take (the largest channel)
N_VALUES = max(N_DIRECTIONS, *CHANNEL_VALUES)
N_ACTIONS = 7


def flatten_observation(obs: dict[str, Any]) -> dict[str, Any]:
    """Minigrid's ``{"direction", "image", "mission"}`` -> the data set's two fields."""
    import numpy as np

    grid = np.concatenate([[obs["direction"]], np.asarray(obs["image"]).reshape(-1)]).astype(
        np.int64
    )  # (148,)
    return {"discrete_observations": grid, "text_observations": obs["mission"]}


def _quiet_reset_wrapper():
    import gymnasium as gym

    class QuietReset(gym.Wrapper):
        """Swallow what minigrid prints while it rejection-samples a level ("Sampling rejected: ...")."""

        def reset(self, **kwargs):
            with contextlib.redirect_stdout(io.StringIO()):
                return self.env.reset(**kwargs)

    return QuietReset


def make_env(env_id: str, **kwargs: Any):
    """Make one BabyAI env with dict observations (see the module docstring).

    Args:
        env_id: the minigrid id, e.g. ``"BabyAI-GoToRedBall-v0"``.
        **kwargs: passed to ``gymnasium.make`` (``render_mode``, ``max_steps``...).

    Returns:
        The wrapped gymnasium env. ``env.unwrapped`` is the minigrid env the BabyAI bot plans on; its ``gen_obs``
        is :func:`jat_envs.babyai.view.observe` (minigrid's observation, computed faster).
    """
    import gymnasium as gym
    import minigrid  # noqa: F401  (registers the BabyAI ids)
    import numpy as np

    from jat_envs.babyai.view import observe

    env = _quiet_reset_wrapper()(gym.make(env_id, **kwargs))
    # the same observations as minigrid's own gen_obs, at a fraction of its cost (jat_envs.babyai.view)
    env.unwrapped.gen_obs = functools.partial(observe, env.unwrapped)
    nvec = np.array([N_DIRECTIONS] + list(CHANNEL_VALUES) * VIEW * VIEW, dtype=np.int64)
    space = gym.spaces.Dict(
        {
            "discrete_observations": gym.spaces.MultiDiscrete(nvec),
            "text_observations": env.observation_space["mission"],
        }
    )
    env = gym.wrappers.TransformObservation(env, flatten_observation, space)
    return gym.wrappers.TransformReward(env, float)
