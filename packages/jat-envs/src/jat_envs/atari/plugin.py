"""Hook implementations of the atari domain."""

from jat_core import hookimpl


@hookimpl
def jat_register_tasks(register):
    """Register the atari tasks."""
