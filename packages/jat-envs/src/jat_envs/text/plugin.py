"""Hook implementations of the text domain."""

from jat_core import hookimpl


@hookimpl
def jat_register_tasks(register):
    """Register the text tasks."""
