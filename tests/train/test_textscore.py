"""Which tasks without an env jat-eval scores as captioning: one field stored as pictures beside the text."""

from jat_core.specs import FieldSpec, TaskSpec
from jat_envs.text.plugin import task_spec
from jat_train.evaluation.textscore import image_field


def test_captioning_is_a_picture_field_beside_the_text():
    assert image_field(task_spec("captions-shapes")).name == "images"
    assert image_field(task_spec("conceptual-captions")).name == "images"
    assert image_field(task_spec("text-local")) is None
    text = FieldSpec("text", "text", (), "string")
    vectors = FieldSpec("points", "points", (16, 3), "float32")
    assert image_field(TaskSpec(name="t", domain="d", observation=(vectors, text))) is None


def test_a_text_sample_ends_with_the_end_token():
    """Training sees where each text ends (a caption, a document), so generation learns to stop there."""
    from jat_core.processor import JatProcessor
    from jat_core.tokenizer import build_tokenizer
    from jat_train.data.windows import tokenize_sample

    tokenizer = build_tokenizer(["a picture of a red circle on the left."] * 20, vocab_size=300)
    spec = task_spec("text-local")
    window = tokenize_sample(spec, 0, {"text": "a picture of a red circle."}, JatProcessor(tokenizer))
    (ids,) = window.steps.values()
    assert ids[-1] == tokenizer.eos_token_id
    assert list(ids[:-1]) == tokenizer("a picture of a red circle.").input_ids
