"""Hook implementations of the metaworld domain."""

from jat_core import hookimpl


@hookimpl
def jat_register_tasks(register):
    """Register the metaworld tasks."""
