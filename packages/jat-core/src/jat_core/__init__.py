"""jat-core: the domain-agnostic heart of JAT.

Plugins import the :data:`hookimpl` marker and the specs from here, without paying for torch::

    from jat_core import hookimpl

    @hookimpl
    def jat_register_tasks(register):
        register(TaskSpec(...))

Users import the model and its companions from here too; those load lazily (torch and transformers are imported
on first use)::

    from jat_core import JatConfig, JatModel
"""

import importlib

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "jat"
#: Marker for hook implementations in plugins.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

from jat_core.plugins import Registry, installed_plugins, load_plugins  # noqa: E402
from jat_core.specs import DatasetSpec, FieldSpec, Scores, TaskSpec  # noqa: E402

#: public names imported on first access (module, attribute): they need torch and transformers
_LAZY = {
    "JatConfig": "jat_core.config",
    "JatModel": "jat_core.model",
    "JatOutput": "jat_core.output",
    "JatAgent": "jat_core.agent",
    "JatProcessor": "jat_core.processor",
    "KVCache": "jat_core.cache",
    "SlotCache": "jat_core.cache",
}


def __getattr__(name: str):
    """Import the lazily exported names of :data:`_LAZY` on first access."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jat_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    *_LAZY,
    "hookimpl",
    "FieldSpec",
    "Scores",
    "DatasetSpec",
    "TaskSpec",
    "Registry",
    "load_plugins",
    "installed_plugins",
    "__version__",
]
