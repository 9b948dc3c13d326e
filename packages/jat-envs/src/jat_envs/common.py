"""Pieces every domain plugin shares: the hub data set of the published tasks, dict observations."""

from __future__ import annotations

from typing import Any

from jat_core.specs import DatasetSpec

#: Hub repository of the published JAT data set (one configuration per task, named like the task).
HUB_DATASET = "jat-project/jat-dataset"


def hub_dataset(task: str) -> DatasetSpec:
    """Where the published episodes of ``task`` live: ``jat-project/jat-dataset``, configuration ``task``."""
    return DatasetSpec(repo=HUB_DATASET, config=task)


def continuous_dict_observations(env: Any, name: str = "continuous_observations") -> Any:
    """Wrap an env with a vector observation so that it returns ``{name: float32 vector}``.

    The published data stores continuous observations as float32; the simulators give float64.

    Args:
        env: a gymnasium env with a ``Box`` observation space.
        name: the observation field name.

    Returns:
        The wrapped env (a ``gymnasium.wrappers.TransformObservation``).
    """
    import gymnasium as gym
    import numpy as np

    box = env.observation_space
    space = gym.spaces.Dict(
        {name: gym.spaces.Box(box.low.astype(np.float32), box.high.astype(np.float32), box.shape, np.float32)}
    )
    return gym.wrappers.TransformObservation(
        env, lambda obs: {name: np.asarray(obs, dtype=np.float32)}, space
    )
