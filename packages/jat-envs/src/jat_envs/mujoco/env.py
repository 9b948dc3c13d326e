"""MuJoCo envs: the gymnasium locomotion/manipulation envs with ``{"continuous_observations": float32}``.

No wrapper besides the dict observation: the reference data stores the raw observation vector and raw
rewards, with gymnasium's own episode limits (1000 steps; Reacher 50, Pusher 100).
"""

from __future__ import annotations

import warnings
from typing import Any

from jat_envs.common import continuous_dict_observations


def make_env(env_id: str, **kwargs: Any):
    """Make one MuJoCo env (``-v4`` ids are chosen deliberately: their deprecation warning is silenced).

    Args:
        env_id: the gymnasium id, e.g. ``"HalfCheetah-v4"``.
        **kwargs: passed to ``gymnasium.make``.

    Returns:
        The wrapped gymnasium env.
    """
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is out of date.*")
        env = gym.make(env_id, **kwargs)
    return continuous_dict_observations(env)
