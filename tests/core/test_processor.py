"""JatProcessor: raw env / data-set values -> model batch tensors, for any task spec."""

import numpy as np
import pytest
import torch
from jat_core.processor import JatProcessor
from jat_core.specs import FieldSpec, TaskSpec
from jat_core.tokenizer import build_tokenizer
from model_helpers import VOCAB, tiny_config, tiny_model

MISSIONS = ["go to the red ball", "pick up the blue key", "open the yellow door", "put the box next to the ball"]
B, T = 2, 3

GRID = TaskSpec(
    "grid-go-to", "grid",
    observation=(
        FieldSpec("discrete_observations", "discrete", (148,), "int64", n=11),
        FieldSpec("text_observations", "discrete", (), "string", max_tokens=64),
    ),
    action=FieldSpec("discrete_actions", "discrete", (), "int64", n=7),
)
FRAMES = TaskSpec(
    "frames-pong", "frames",
    observation=(FieldSpec("image_observations", "image", (84, 84, 4), "uint8", low=0, high=255),),
    action=FieldSpec("discrete_actions", "discrete", (), "int64", n=6),
)
ROBOT = TaskSpec(
    "robot-reach", "robot",
    observation=(FieldSpec("continuous_observations", "continuous", (11,), "float32"),),
    action=FieldSpec("continuous_actions", "continuous", (2,), "float32", low=-1, high=1),
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(MISSIONS * 20, vocab_size=VOCAB)


@pytest.fixture(scope="module")
def processor(tokenizer):
    return JatProcessor(tokenizer, config=tiny_config())


def grid_values(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "discrete_observations": rng.integers(0, 11, size=(B, T, 148)),
        "text_observations": np.array([[MISSIONS[0]] * T, [MISSIONS[3]] * T]),
    }


def test_mission_tokens_join_the_grid_values(processor, tokenizer):
    values = grid_values()
    batch = processor.prepare_observations(GRID, values)
    obs = batch["discrete_observations"]
    assert list(batch) == ["discrete_observations"] and obs.shape == (B, T, 212) and obs.dtype == torch.int64
    assert torch.equal(obs[..., :148], torch.from_numpy(values["discrete_observations"]))
    ids = tokenizer(MISSIONS[3])["input_ids"]
    assert obs[1, 0, 148 : 148 + len(ids)].tolist() == ids
    assert (obs[1, 0, 148 + len(ids) :] == tokenizer.eos_token_id).all()  # padded with the end token


def test_long_strings_are_truncated_to_max_tokens(processor):
    ids = processor.tokenize(["the ball " * 100, ""], 64)
    assert ids.shape == (2, 64) and (ids[1] == processor.pad_token_id).all()


def test_prepared_batch_runs_through_the_model(tokenizer):
    model = tiny_model()
    processor = JatProcessor.from_model(model, tokenizer)
    assert processor.codec("discrete") is model.codecs["discrete"]
    batch = processor.prepare_observations(GRID, grid_values())
    batch |= processor.prepare_actions(GRID, np.array([[0, 1, 2], [3, 4, 5]]))
    batch |= processor.prepare_rewards(np.zeros((B, T)))
    with torch.no_grad():
        out = model(**batch)
    assert out.pred_actions.shape == (B, T, VOCAB)


def test_frames_are_normalised_channels_first(processor):
    frames = np.random.default_rng(0).integers(0, 256, size=(B, T, 84, 84, 4), dtype=np.uint8)
    batch = processor.prepare_observations(FRAMES, {"image_observations": frames})
    x = batch["image_observations"]
    assert x.shape == (B, T, 4, 84, 84) and x.dtype == torch.float32
    torch.testing.assert_close(x[1, 2, 3], torch.from_numpy(frames[1, 2, :, :, 3]).float() / 127.5 - 1)
    assert processor.codec("image").encoder.fc.weight.is_meta  # no weights were allocated to prepare


def test_continuous_fields_and_actions(processor):
    obs = np.random.default_rng(0).normal(size=(B, T, 11))
    batch = processor.prepare_observations(ROBOT, {"continuous_observations": obs})
    assert batch["continuous_observations"].dtype == torch.float32
    acts = processor.prepare_actions(ROBOT, np.zeros((B, T, 2), dtype=np.float32))
    assert acts["continuous_actions"].shape == (B, T, 2)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: p.prepare_observations(GRID, {"discrete_observations": np.zeros((B, T, 148), int)}),
         r"task 'grid-go-to': expected observation fields .* missing \['text_observations'\]"),
        (lambda p: p.prepare_observations(ROBOT, {"continuous_observations": np.zeros((B, T, 11)), "extra": 1}),
         r"unknown \['extra'\]"),
        (lambda p: p.prepare_observations(ROBOT, {"continuous_observations": np.zeros((B, T, 12))}),
         r"task 'robot-reach' field 'continuous_observations': expected shape \(2, 3, 11\), got \(2, 3, 12\)"),
        (lambda p: p.prepare_observations(GRID, {**grid_values(), "text_observations": np.zeros((B, T))}),
         r"field 'text_observations': expected str values"),
        (lambda p: p.prepare_observations(GRID, {**grid_values(), "text_observations": np.array([["a"] * 2] * 2)}),
         r"field 'text_observations': expected shape \(2, 3\), got \(2, 2\)"),
        (lambda p: p.prepare_actions(GRID, np.full((B, T), 7)),
         r"task 'grid-go-to' field 'discrete_actions': expected values in \[0, 7\), got range \[7, 7\]"),
        (lambda p: p.prepare_actions(GRID, np.zeros((B, T), dtype=np.float32)),
         r"field 'discrete_actions': expected dtype int64, got float32"),
        (lambda p: p.prepare_rewards(np.zeros(3)), r"rewards: expected shape \(B, T\)"),
    ],
)
def test_bad_values_name_task_field_expected_and_actual(processor, call, message):
    with pytest.raises(ValueError, match=message):
        call(processor)


def test_text_and_images_for_captioning(processor, tokenizer):
    batch = processor.prepare_text(["go to the red ball", "open"])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool
    assert mask.tolist()[1] == [True] + [False] * (ids.shape[1] - 1)  # padded on the right
    assert ids[0].tolist() == tokenizer("go to the red ball")["input_ids"]
    assert processor.prepare_text(["go to the red ball"], max_length=2)["input_ids"].shape == (1, 2)
    images = processor.prepare_images([np.zeros((100, 80, 3), dtype=np.uint8)] * 2)
    assert images["pixel_values"].shape == (2, 3, 224, 224)
    model = tiny_model()
    with torch.no_grad():
        out = model(**batch, **images)
    assert out.logits.shape == (2, 196 + ids.shape[1], VOCAB) and torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="texts: expected a non-empty list of str"):
        processor.prepare_text([])
