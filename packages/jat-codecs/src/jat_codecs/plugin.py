"""Hook implementations of the built-in codecs: registered like any third-party codec plugin.

The codec modules (and torch) are imported when a codec is built, not when the plugin is loaded, so that
``jat-plugins`` and task listing stay fast.
"""

import importlib

from jat_core import hookimpl

#: codec name -> module of this package that defines ``build(config, shared)``, in the order a model builds them
#: (the published checkpoint's config names no codecs: this order rebuilds it, random initialisation included).
CODECS = {
    "continuous": "jat_codecs.continuous",
    "discrete": "jat_codecs.discrete",
    "image": "jat_codecs.image",
    "vit": "jat_codecs.vit",
    "text": "jat_codecs.text",
}
#: codec name -> the config fields it reads, with the published model's values as defaults (the published
#: ``config.json`` carries them at the top level).
OPTIONS = {
    "continuous": {"max_continuous_size": 377},
    "discrete": {"max_discrete_value": 212},
    "vit": {"image_size": 224, "num_channels": 3, "patch_size": 16},
}


def factory(module: str):
    """A codec factory ``(config, shared) -> Codec`` that imports ``module`` and calls its ``build``."""

    def build(config, shared):
        return importlib.import_module(module).build(config, shared)

    build.__name__ = f"build_{module.rsplit('.', 1)[-1]}"
    build.__qualname__ = build.__name__
    return build


@hookimpl
def jat_register_codecs(register):
    """Register the five built-in codecs: ``continuous``, ``discrete``, ``image``, ``vit``, ``text``."""
    for name, module in CODECS.items():
        register(name, factory(module), OPTIONS.get(name))
