"""Hook implementations of the text domain: language modelling, captioning and VQA data sets (no env)."""

from __future__ import annotations

from jat_core import hookimpl
from jat_core.specs import FieldSpec, TaskSpec

from jat_envs.common import hub_dataset
from jat_envs.text.tasks import TASKS

DOMAIN = "text"
#: images are fed to the ViT patch encoder as 224x224 RGB (the processor resizes the data set's images)
IMAGE_SIZE = 224

IMAGES = FieldSpec("images", "vit", (IMAGE_SIZE, IMAGE_SIZE, 3), "uint8", low=0, high=255)
TEXT = FieldSpec("text", "text", (), "string")


def task_spec(name: str) -> TaskSpec:
    """The spec of one text task (``name`` is a key of :data:`jat_envs.text.tasks.TASKS`).

    Fields are listed in sequence order: the image patches come before the text tokens.
    """
    has_images, sample_weight = TASKS[name]
    return TaskSpec(
        name=name,
        domain=DOMAIN,
        observation=(IMAGES, TEXT) if has_images else (TEXT,),
        dataset=hub_dataset(name),
        sample_weight=sample_weight,
    )


@hookimpl
def jat_register_tasks(register):
    """Register the 4 text tasks."""
    for name in TASKS:
        register(task_spec(name))
