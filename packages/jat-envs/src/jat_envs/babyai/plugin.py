"""Hook implementations of the babyai domain."""

from jat_core import hookimpl


@hookimpl
def jat_register_tasks(register):
    """Register the babyai tasks."""
