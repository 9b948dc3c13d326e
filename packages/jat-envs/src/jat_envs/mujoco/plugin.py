"""Hook implementations of the mujoco domain."""

from jat_core import hookimpl


@hookimpl
def jat_register_tasks(register):
    """Register the mujoco tasks."""
