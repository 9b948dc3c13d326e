"""Hook implementations of the built-in codecs."""

from jat_core import hookimpl


@hookimpl
def jat_register_codecs(register):
    """Register the built-in codecs."""
