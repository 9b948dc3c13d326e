"""Hook implementations of the text domain: language modelling, captioning and VQA data sets (no env).

The 4 published tasks read the hub data set; the 2 local ones (:data:`LOCAL_TASKS`) are made on this machine by
``jat-collect``: ``text-local`` from plain-text files (:mod:`jat_envs.text.local`), ``captions-shapes`` drawn on
the fly (:mod:`jat_envs.text.shapes`).
"""

from __future__ import annotations

from jat_core import hookimpl
from jat_core.specs import FieldSpec, TaskSpec

from jat_envs.common import hub_dataset
from jat_envs.text.tasks import LOCAL_TASKS, TASKS

DOMAIN = "text"
#: images are fed to the ViT patch encoder as 224x224 RGB (the processor resizes the data set's images)
IMAGE_SIZE = 224

IMAGES = FieldSpec("images", "vit", (IMAGE_SIZE, IMAGE_SIZE, 3), "uint8", low=0, high=255)
TEXT = FieldSpec("text", "text", (), "string")


def task_spec(name: str) -> TaskSpec:
    """The spec of one text task (``name`` is a key of :data:`jat_envs.text.tasks.TASKS` or ``LOCAL_TASKS``).

    Fields are listed in sequence order: the image patches come before the text tokens. Local tasks name no hub
    data set (their data live in ``DIR/<task>/``) and carry their ``samples`` source.
    """
    if name in LOCAL_TASKS:
        has_images, source = LOCAL_TASKS[name]
        data = {"samples": _source(source)}
    else:
        has_images, sample_weight = TASKS[name]
        data = {"dataset": hub_dataset(name), "sample_weight": sample_weight}
    return TaskSpec(name=name, domain=DOMAIN, observation=(IMAGES, TEXT) if has_images else (TEXT,), **data)


def _source(reference: str):
    """A ``samples`` callable that imports ``module:function`` when called (the plugin stays light to import)."""
    module, _, function = reference.partition(":")

    def samples(seed: int = 0, input_dir: str | None = None):
        import importlib

        return getattr(importlib.import_module(module), function)(seed=seed, input_dir=input_dir)

    samples.__doc__ = f"Samples of {reference} (imported when called)."
    return samples


@hookimpl
def jat_register_tasks(register):
    """Register the 4 published text tasks and the 2 local ones."""
    for name in (*TASKS, *LOCAL_TASKS):
        register(task_spec(name))
