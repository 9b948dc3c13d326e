"""The Meta-World expert: Meta-World's own scripted policies (``metaworld.policies``).

These hand-written controllers read the object and goal positions out of the observation; they are not the PPO
agents that produced the published data, but solve most tasks within 100 steps (see the collection report).
Actions are clipped to the action space ([-1, 1]), as the env would clip them anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def expert(env: Any) -> Callable[[dict], Any]:
    """The scripted policy of the env's task.

    Args:
        env: a Meta-World env from :func:`jat_envs.metaworld.env.make_env`.

    Returns:
        ``policy(observation) -> float32 (4,)`` for observations ``{"continuous_observations": (39,)}``.
    """
    import numpy as np
    from metaworld.policies import ENV_POLICY_MAP

    scripted = ENV_POLICY_MAP[_env_name(env)]()
    low, high = env.action_space.low, env.action_space.high

    def policy(observation: dict):
        obs = np.asarray(observation["continuous_observations"], dtype=np.float64)
        return np.clip(scripted.get_action(obs), low, high).astype(np.float32)

    return policy


def _env_name(env: Any) -> str:
    """The ``<name>-v3`` of a Meta-World env, from the spec of any wrapper layer."""
    while env is not None:
        spec = getattr(env, "spec", None)
        if spec is not None and "env_name" in (spec.kwargs or {}):
            return spec.kwargs["env_name"]
        env = getattr(env, "env", None)
    raise ValueError("cannot tell which Meta-World task this env is: no env_name in its spec")
