"""Collect JAT data with a Stable-Baselines3 agent: a ``jat-collect --policy module:factory`` example.

``jat-collect --policy MODULE:FACTORY`` plays any policy: ``FACTORY(env) -> policy`` is called after each
``env.reset``, and ``policy(observation) -> action`` receives the task's observation dict (``{field name:
value}``, e.g. ``{"continuous_observations": float32 (11,)}``) and returns one action (an int for a discrete
action field, an array for a continuous one; ``None`` gives up on the episode). This module adapts a Stable-Baselines3
model saved with ``model.save("agent.zip")`` to that contract::

    SB3_MODEL=agent.zip SB3_ALGO=SAC PYTHONPATH=examples \\
        jat-collect --tasks mujoco-pendulum --episodes 100 --out data/ --policy sb3_policy:factory

The model must have been trained on observations shaped like the task's one observation field (for the MuJoCo
tasks, the gymnasium env of ``TaskSpec.metadata["env_id"]``, whose vector ``make_env`` wraps as
``continuous_observations``), and its action space must be the task's. ``SB3_ALGO`` names the class that loads
the file (``PPO``, ``SAC``, ``TD3``, ``A2C``, ``DQN``, ...; default ``PPO``) and ``SB3_FIELD`` the observation
field given to the model (default: the task's only one). The file is loaded once per process.

A Stable-Baselines3 ``.zip`` holds pickled objects: loading one runs code from it, so load only files you trust.
From Python, :func:`policy_factory` wraps any object with SB3's ``predict(observation, deterministic=...)``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np


def policy_factory(model: Any, *, field: str | None = None, deterministic: bool = True) -> Callable:
    """A ``jat-collect`` policy factory around an SB3 model (anything with ``predict(obs, deterministic=)``).

    Args:
        model: e.g. ``stable_baselines3.SAC.load("agent.zip")``.
        field: the observation field to give the model (default: the observation's only field).
        deterministic: act with the policy's mode (the usual choice for expert data) or sample.

    Returns:
        ``factory(env) -> policy`` with ``policy(observation dict) -> action``, the action cast to the env's
        action space (an ``int`` for a discrete space, an array of its dtype otherwise).
    """

    def factory(env: Any) -> Callable[[dict], Any]:
        space = env.action_space
        discrete = np.issubdtype(space.dtype, np.integer) and space.shape == ()

        def policy(observation: dict) -> Any:
            if field is None and len(observation) != 1:
                raise ValueError(f"sb3 policy: the observation has fields {sorted(observation)}; set SB3_FIELD to one")
            obs = observation[field] if field is not None else next(iter(observation.values()))
            action, _ = model.predict(obs, deterministic=deterministic)
            if discrete:
                return int(np.asarray(action).reshape(()))
            return np.asarray(action, dtype=space.dtype).reshape(space.shape)

        return policy

    return factory


@functools.lru_cache(maxsize=4)
def load_model(path: str, algo: str = "PPO") -> Any:
    """Load a saved SB3 model once per process.

    Raises:
        ValueError: the file does not exist, Stable-Baselines3 is not installed, or ``algo`` is not one of its
            classes (one line naming what is wrong).
    """
    if not os.path.isfile(path):
        raise ValueError(f"SB3_MODEL: no such file {path!r} (a model saved with model.save('agent.zip'))")
    try:
        import stable_baselines3
    except ImportError:
        raise ValueError("SB3_MODEL: Stable-Baselines3 is not installed (pip install stable-baselines3)") from None
    cls = getattr(stable_baselines3, algo, None)
    if cls is None or not hasattr(cls, "load"):
        raise ValueError(f"SB3_ALGO: {algo!r} is not a Stable-Baselines3 algorithm (PPO, SAC, TD3, A2C, DQN, ...)")
    return cls.load(path, device="cpu")


def factory(env: Any) -> Callable[[dict], Any]:
    """The ``--policy sb3_policy:factory`` entry: the model of ``$SB3_MODEL`` (class ``$SB3_ALGO``, default PPO),
    given the observation field ``$SB3_FIELD`` (default: the only one), acting deterministically."""
    path = os.environ.get("SB3_MODEL")
    if not path:
        raise ValueError("SB3_MODEL: set it to the .zip file of a Stable-Baselines3 model")
    model = load_model(os.path.expanduser(path), os.environ.get("SB3_ALGO", "PPO"))
    return policy_factory(model, field=os.environ.get("SB3_FIELD") or None)(env)
