"""jat-core: the domain-agnostic heart of JAT.

Plugins import the :data:`hookimpl` marker from here::

    from jat_core import hookimpl

    @hookimpl
    def jat_register_tasks(register):
        register(TaskSpec(...))
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "jat"
#: Marker for hook implementations in plugins.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

from jat_core.plugins import Registry, installed_plugins, load_plugins  # noqa: E402
from jat_core.specs import DatasetSpec, FieldSpec, Scores, TaskSpec  # noqa: E402

__all__ = [
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
