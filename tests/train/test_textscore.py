"""Which tasks without an env jat-eval scores as captioning: one field stored as pictures beside the text."""

from jat_core.specs import FieldSpec, TaskSpec
from jat_envs.text.plugin import task_spec
from jat_train.textscore import image_field


def test_captioning_is_a_picture_field_beside_the_text():
    assert image_field(task_spec("captions-shapes")).name == "images"
    assert image_field(task_spec("conceptual-captions")).name == "images"
    assert image_field(task_spec("text-local")) is None
    text = FieldSpec("text", "text", (), "string")
    vectors = FieldSpec("points", "points", (16, 3), "float32")
    assert image_field(TaskSpec(name="t", domain="d", observation=(vectors, text))) is None
