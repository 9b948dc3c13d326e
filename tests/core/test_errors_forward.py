"""Fuzzing ``JatModel.forward`` with malformed input: NaN and infinite values in every float column, rewards and
loss weights; empty batches (no sample, no step, no token). Every case is a one-line ``ValueError`` naming the
column, and nothing is lost: the inputs are not modified, the weights are unchanged, and the model's saved files
are byte-identical afterwards."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest
import torch
from model_helpers import VOCAB, continuous_batch, discrete_batch, image_batch, snapshot, tiny_model

torch.set_num_threads(1)

IMAGE_SIZE = 32  # small ViT images keep the captioning cases cheap


def text_batch(B=2, L=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(input_ids=torch.randint(0, VOCAB, (B, L), generator=g))


def caption_batch(B=2, L=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        pixel_values=torch.randn(B, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g),
        input_ids=torch.randint(0, VOCAB, (B, L), generator=g),
    )


BATCHES = {
    "continuous": continuous_batch,
    "discrete": discrete_batch,
    "image": lambda: image_batch(B=1, T=2),
    "text": text_batch,
    "caption": caption_batch,
}
#: every float column of every kind of batch: where a NaN or an infinity can hide
FLOAT_COLUMNS = [
    (kind, column) for kind, make in BATCHES.items() for column, v in make().items() if v.is_floating_point()
]
BAD = {"NaN": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


@pytest.fixture(scope="module")
def model():
    return tiny_model(image_size=IMAGE_SIZE)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(folder)
    return folder, snapshot(folder)


@pytest.fixture(autouse=True)
def nothing_lost(model, saved):
    """After every case: the weights are the same, the saved files byte-identical."""
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    yield
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), f"{key} changed"
    folder, files = saved
    assert snapshot(folder) == files


def refused(model, batch: dict, pattern: str, **kwargs) -> str:
    """Call ``model(**batch)``, expect a one-line ValueError matching ``pattern``; the batch must be unchanged."""
    before = {k: v.clone() for k, v in batch.items()}
    with pytest.raises(ValueError, match=pattern) as info:
        model(**batch, **kwargs)
    for key, value in batch.items():
        assert torch.equal(value.nan_to_num(), before[key].nan_to_num()), f"{key} was modified"
        assert torch.equal(value.isnan(), before[key].isnan()), f"{key} was modified"
    message = str(info.value)
    assert "\n" not in message
    return message


def corrupt(batch: dict, column: str, value: float, rng: np.random.Generator) -> list[int]:
    """Put ``value`` at a random position of ``batch[column]``; return the position."""
    shape = batch[column].shape
    index = [int(rng.integers(0, n)) for n in shape]
    batch[column][tuple(index)] = value
    return index


@pytest.mark.parametrize("label", list(BAD))
@pytest.mark.parametrize("kind, column", FLOAT_COLUMNS)
def test_non_finite_values_name_the_column_and_position(model, kind, column, label):
    rng = np.random.default_rng(zlib.crc32(f"{kind} {column} {label}".encode()))
    batch = BATCHES[kind]()
    index = corrupt(batch, column, BAD[label], rng)
    refused(model, batch, rf"^{column}: expected finite values, got {re.escape(label)} at {re.escape(str(index))}$")


@pytest.mark.parametrize("seed", range(16))
def test_random_corruptions_are_refused_whatever_the_column(model, seed):
    """Several bad values scattered over several columns: the error names one of the corrupted columns."""
    rng = np.random.default_rng(seed)
    kinds = sorted({k for k, _ in FLOAT_COLUMNS})
    kind = kinds[seed % len(kinds)]
    batch = BATCHES[kind]()
    columns = sorted({c for k, c in FLOAT_COLUMNS if k == kind})
    hit = set(rng.choice(columns, size=int(rng.integers(1, len(columns) + 1)), replace=False).tolist())
    for column in hit:
        for _ in range(int(rng.integers(1, 4))):
            corrupt(batch, column, BAD[rng.choice(list(BAD))], rng)
    message = refused(model, batch, "expected finite values")
    assert message.split(":")[0] in hit


@pytest.mark.parametrize("label", list(BAD))
@pytest.mark.parametrize("per_sample", [False, True])
def test_non_finite_loss_weights(model, label, per_sample):
    batch = continuous_batch(B=2, T=5)
    weight = torch.ones(2) if per_sample else torch.ones(2, 5)
    weight.view(-1)[-1] = BAD[label]
    refused(model, batch, rf"^loss_weight: expected finite values, got {re.escape(label)}", loss_weight=weight)


@pytest.mark.parametrize("kind", ["continuous", "discrete", "image"])
@pytest.mark.parametrize("empty", ["samples", "steps", "both"])
def test_empty_rl_batches(model, kind, empty):
    full = BATCHES[kind]()
    B = 0 if empty in ("samples", "both") else 1
    T = 0 if empty in ("steps", "both") else 1
    batch = {k: v[:B, :T] for k, v in full.items()}
    message = refused(model, batch, r"expected at least one sample and one step \(B, T > 0\), got shape")
    assert message.split(":")[0] in batch
    assert f"({B}, {T}" in message


def test_empty_rl_batch_without_loss_too(model):
    batch = {k: v[:0] for k, v in continuous_batch().items()}
    refused(model, batch, r"^continuous_observations: expected at least one sample", return_loss=False)


@pytest.mark.parametrize(
    "batch, pattern",
    [
        (dict(input_ids=torch.zeros(2, 0, dtype=torch.long)), r"^input_ids: expected at least one token \(L > 0\), got shape \(2, 0\)$"),
        (dict(input_ids=torch.zeros(0, 3, dtype=torch.long)), r"^input_ids: expected at least one sample \(B > 0\), got shape \(0, 3\)$"),
        (dict(input_ids=torch.zeros(0, 0, dtype=torch.long)), r"^input_ids: expected at least one sample"),
        (
            dict(pixel_values=torch.zeros(0, 3, IMAGE_SIZE, IMAGE_SIZE), input_ids=torch.zeros(0, 2, dtype=torch.long)),
            r"^(pixel_values|input_ids): expected at least one sample \(B > 0\)",
        ),
    ],
    ids=["no-tokens", "no-samples", "nothing", "no-captions"],
)
def test_empty_sequence_batches(model, batch, pattern):
    refused(model, batch, pattern)


def test_an_image_with_no_prompt_is_not_empty(model):
    """Captioning with no prompt feeds ``input_ids`` of shape ``(1, 0)`` with an image: that is valid input."""
    pixels = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        out = model(input_ids=torch.zeros(1, 0, dtype=torch.long), pixel_values=pixels, return_loss=False)
    assert out.logits.shape[:2] == (1, (IMAGE_SIZE // 16) ** 2)
    assert torch.isfinite(out.logits).all()
    assert model.generate(torch.zeros(1, 0, dtype=torch.long), max_new_tokens=2, pixel_values=pixels).shape == (1, 2)


def test_empty_generation_prompt_names_the_column(model):
    with pytest.raises(ValueError, match=r"^input_ids: expected at least one token"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), max_new_tokens=1)


def test_finite_batches_still_give_finite_losses(model):
    for kind, make in BATCHES.items():
        with torch.no_grad():
            out = model(**make())
        assert torch.isfinite(out.loss), kind
