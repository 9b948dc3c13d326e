"""Shared helpers for the domain plugin tests: the built-in domains' tasks, without needing the codec plugins."""

import pytest
from jat_core.plugins import Registry
from jat_envs.atari import plugin as atari
from jat_envs.babyai import plugin as babyai
from jat_envs.metaworld import plugin as metaworld
from jat_envs.mujoco import plugin as mujoco
from jat_envs.text import plugin as text

PLUGINS = {"atari": atari, "babyai": babyai, "metaworld": metaworld, "mujoco": mujoco, "text": text}


def build_registry() -> Registry:
    """A registry filled by calling each built-in domain plugin's hook (codec checks are not this folder's job)."""
    registry = Registry()
    for name, module in PLUGINS.items():
        module.jat_register_tasks(register=lambda spec, _n=name: registry.register_task(_n, spec))
    return registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    return build_registry()
