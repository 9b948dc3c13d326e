"""Fuzzing ``JatModel.from_pretrained`` with damaged and mismatched checkpoints: truncated or corrupt safetensors,
a ``config.json`` that is not JSON (or not a JAT config), missing files, a pickle ``pytorch_model.bin``, missing,
unexpected and wrong-shaped weights. Every case is a one-line ``CheckpointError`` (a ``ValueError`` and an
``OSError``) naming the file and, for weights, the keys and shapes; the pickle is never opened; and the damaged
checkpoint's files are byte-identical after the failed load."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import struct

import pytest
import torch
from jat_core.config import JatConfig
from jat_core.model import CheckpointError, JatModel
from model_helpers import snapshot, tiny_config
from safetensors.torch import load_file, save_file
from transformers import AutoModel

torch.set_num_threads(1)

WEIGHTS, CONFIG = "model.safetensors", "config.json"


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A small saved model (no image codecs: a 2 MB checkpoint)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("original")
    JatModel(tiny_config(codecs=["continuous", "discrete", "text"])).eval().save_pretrained(folder)
    return folder


@pytest.fixture
def checkpoint(original, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(original, folder)
    return folder


def refused(folder, *names: str, load=JatModel.from_pretrained, **kwargs) -> str:
    """Load ``folder`` and expect a one-line CheckpointError naming ``names``; the files must be unchanged."""
    before = snapshot(folder if os.path.isdir(folder) else os.path.dirname(folder))
    with pytest.raises(CheckpointError) as info:
        load(folder, **kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, OSError)
    message = str(info.value)
    assert "\n" not in message
    for name in names:
        assert str(name) in message, f"{name!r} not in {message!r}"
    assert snapshot(folder if os.path.isdir(folder) else os.path.dirname(folder)) == before
    return message


def write(path, data: bytes | str) -> None:
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def edit_weights(folder, change) -> None:
    """Rewrite ``model.safetensors`` with ``change(weights)`` applied."""
    weights = load_file(folder / WEIGHTS)
    change(weights)
    save_file(weights, folder / WEIGHTS, metadata={"format": "pt"})


# -- damaged safetensors -----------------------------------------------------------------------------------------
TRUNCATIONS = {
    "empty": lambda n: 0,
    "length-only": lambda n: 8,
    "mid-header": lambda n: 40,
    "half": lambda n: n // 2,
    "last-byte": lambda n: n - 1,
}


@pytest.mark.parametrize("where", list(TRUNCATIONS))
def test_truncated_weights_name_the_file(checkpoint, where):
    data = (checkpoint / WEIGHTS).read_bytes()
    write(checkpoint / WEIGHTS, data[: TRUNCATIONS[where](len(data))])
    message = refused(checkpoint, checkpoint / WEIGHTS)
    assert "truncated or damaged" in message


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: struct.pack("<Q", 10**12) + data[8:],  # a header length past the end of the file
        lambda data: data[:8] + b"#" * 16 + data[24:],  # the header's JSON overwritten
        lambda data: data + b"\x00" * 64,  # bytes after the last tensor
        lambda data: b"PK\x03\x04" + data[4:],  # a zip (torch.save) signature
        lambda data: b"not a checkpoint at all",
    ],
    ids=["header-length", "header-json", "trailing-bytes", "zip-signature", "text"],
)
def test_corrupt_weights_name_the_file(checkpoint, damage):
    write(checkpoint / WEIGHTS, damage((checkpoint / WEIGHTS).read_bytes()))
    refused(checkpoint, checkpoint / WEIGHTS)


def test_the_weights_file_is_a_directory(checkpoint):
    os.remove(checkpoint / WEIGHTS)
    os.mkdir(checkpoint / WEIGHTS)
    refused(checkpoint, checkpoint / WEIGHTS)


def test_missing_weights_name_the_file(checkpoint):
    os.remove(checkpoint / WEIGHTS)
    refused(checkpoint, checkpoint / WEIGHTS, "no such file")


# -- damaged config.json -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, what",
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("{not json}", "not valid JSON"),
        ("{'hidden_size': 128}", "not valid JSON"),
        (b"\xff\xfe\x00binary", "not valid JSON"),
        ("null", "expected a JSON object"),
        ("[1, 2]", "expected a JSON object"),
        ("42", "expected a JSON object"),
        ('"jat"', "expected a JSON object"),
        ('{"model_type": "gpt2"}', "model_type 'gpt2', expected 'jat'"),
        ('{"model_type": "jat", "hidden_size": -3}', "JatConfig.hidden_size: expected a positive int"),
        ('{"model_type": "jat", "num_layers": "two"}', "JatConfig.num_layers: expected a positive int, got 'two'"),
        ('{"model_type": "jat", "attention_types": 5}', "JatConfig.attention_types: expected a list of [pattern, repeats]"),
        ('{"model_type": "jat", "codecs": "text"}', "JatConfig.codecs: expected a list of codec names"),
    ],
)
def test_a_bad_config_names_the_file(checkpoint, text, what):
    write(checkpoint / CONFIG, text)
    refused(checkpoint, checkpoint / CONFIG, what)


def test_a_truncated_config_names_the_file(checkpoint):
    data = (checkpoint / CONFIG).read_bytes()
    write(checkpoint / CONFIG, data[: len(data) // 2])
    refused(checkpoint, checkpoint / CONFIG, "not valid JSON")


def test_a_missing_config_names_the_file(checkpoint):
    os.remove(checkpoint / CONFIG)
    refused(checkpoint, checkpoint / CONFIG, "no such file")


@pytest.mark.parametrize("text, what", [(None, "no such file"), ("[1]", "expected a JSON object"),
                                        ('{"hidden_size": -1}', "JatConfig.hidden_size: expected a positive int"),
                                        ("{", "not valid JSON")])
def test_the_config_alone_names_the_file_too(tmp_path, text, what):
    """``JatConfig.from_pretrained`` on a directory without a good config.json: an error, not the default config."""
    if text is not None:
        write(tmp_path / CONFIG, text)
    refused(tmp_path, tmp_path / CONFIG, what, load=JatConfig.from_pretrained)
    if text is not None:
        refused(tmp_path / CONFIG, tmp_path / CONFIG, what, load=JatConfig.from_pretrained)


def test_a_config_file_path_loads(checkpoint):
    assert JatConfig.from_pretrained(checkpoint / CONFIG).hidden_size == 128


def test_an_explicit_config_skips_the_file_and_still_checks_the_weights(checkpoint):
    config = JatConfig.from_pretrained(checkpoint)
    write(checkpoint / CONFIG, "{")
    assert isinstance(JatModel.from_pretrained(checkpoint, config=config), JatModel)
    edit_weights(checkpoint, lambda w: w.pop("lm_head.weight"))
    refused(checkpoint, "lm_head.weight", config=config)


# -- pickle checkpoints ------------------------------------------------------------------------------------------
class _Marker:
    """Unpickling this writes a file: proof that a pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["pytorch_model.bin", "pytorch_model-00001-of-00002.bin", "pytorch_model.bin.index.json"])
def test_a_pickle_checkpoint_is_refused_unopened(checkpoint, tmp_path, monkeypatch, name):
    marker = tmp_path / "pickle-ran"
    os.remove(checkpoint / WEIGHTS)
    with open(checkpoint / name, "wb") as f:
        pickle.dump(_Marker(str(marker)), f)
    opened = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: opened.append(a) or pytest.fail("torch.load was called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: opened.append(a) or pytest.fail("pickle.load was called"))
    message = refused(checkpoint, checkpoint / name, "pickle")
    assert "refused" in message
    assert not opened and not marker.exists()


def test_safetensors_only_even_when_asked_otherwise(checkpoint):
    with pytest.raises(ValueError, match=r"^use_safetensors=False: JatModel loads safetensors weights only"):
        JatModel.from_pretrained(checkpoint, use_safetensors=False)


def test_safetensors_win_over_a_pickle_next_to_them(checkpoint, original):
    write(checkpoint / "pytorch_model.bin", b"never read")
    loaded = JatModel.from_pretrained(checkpoint)
    expected = load_file(original / WEIGHTS)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())


# -- weights that do not fit -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    ["lm_head.weight", "transformer.wte.weight", "transformer.h.1.attn.attention.q_proj.weight",
     "codecs.continuous.encoder.bias", "codecs.discrete.project.weight", "transformer.ln_f.bias"],
)
def test_a_missing_weight_names_the_key(checkpoint, key):
    edit_weights(checkpoint, lambda w: w.pop(key))
    message = refused(checkpoint, checkpoint / WEIGHTS, f"missing weights {key}")
    assert "unexpected" not in message and "wrong shapes" not in message


def test_many_missing_weights_are_counted(checkpoint):
    edit_weights(checkpoint, lambda w: [w.pop(k) for k in [k for k in w if k.startswith("transformer.h.")]])
    assert re.search(r"missing weights transformer\.h\.\S+(, \S+){7} and \d+ more$", refused(checkpoint))


@pytest.mark.parametrize("key", ["bogus.weight", "codecs.image.encoder.fc.weight", "transformer.h.2.ln_1.weight"])
def test_an_unexpected_weight_names_the_key(checkpoint, key):
    edit_weights(checkpoint, lambda w: w.update({key: torch.zeros(4)}))
    refused(checkpoint, checkpoint / WEIGHTS, f"unexpected weights {key}")


@pytest.mark.parametrize(
    "key, shape",
    [("lm_head.weight", (3, 128)), ("transformer.wpe.weight", (256, 64)), ("codecs.continuous.decoder.bias", (376,)),
     ("transformer.ln_f.weight", (128, 1))],
)
def test_a_wrong_shape_names_the_key_and_both_shapes(checkpoint, original, key, shape):
    expected = tuple(load_file(original / WEIGHTS)[key].shape)
    edit_weights(checkpoint, lambda w: w.update({key: torch.zeros(shape)}))
    refused(checkpoint, checkpoint / WEIGHTS, f"wrong shapes {key} (model {expected}, file {shape})")


def test_every_problem_is_reported_at_once(checkpoint):
    def change(w):
        w.pop("codecs.continuous.encoder.bias")
        w["bogus"] = torch.zeros(1)
        w["lm_head.weight"] = torch.zeros(3, 128)

    edit_weights(checkpoint, change)
    refused(checkpoint, "missing weights codecs.continuous.encoder.bias", "unexpected weights bogus",
            "wrong shapes lm_head.weight (model (300, 128), file (3, 128))")


def test_ignore_mismatched_sizes_allows_shapes_only(checkpoint):
    edit_weights(checkpoint, lambda w: w.update({"lm_head.weight": torch.zeros(3, 128)}))
    model, info = JatModel.from_pretrained(checkpoint, ignore_mismatched_sizes=True, output_loading_info=True)
    assert [k for k, *_ in info["mismatched_keys"]] == ["lm_head.weight"]
    edit_weights(checkpoint, lambda w: w.pop("transformer.wte.weight"))
    refused(checkpoint, "missing weights transformer.wte.weight", ignore_mismatched_sizes=True)


def test_the_auto_class_is_as_strict(checkpoint):
    edit_weights(checkpoint, lambda w: w.pop("transformer.wte.weight"))
    refused(checkpoint, checkpoint / WEIGHTS, "missing weights transformer.wte.weight", load=AutoModel.from_pretrained)


def test_a_config_that_does_not_match_the_weights(checkpoint):
    config = json.loads((checkpoint / CONFIG).read_text())
    write(checkpoint / CONFIG, json.dumps({**config, "vocab_size": 301}))
    refused(checkpoint, "wrong shapes", "lm_head.weight (model (301, 128), file (300, 128))")


def test_an_override_that_does_not_match_the_weights(checkpoint):
    refused(checkpoint, "missing weights transformer.h.2.", num_layers=3)


# -- sharded checkpoints -----------------------------------------------------------------------------------------
@pytest.fixture
def sharded(original, tmp_path):
    folder = tmp_path / "sharded"
    JatModel.from_pretrained(original).save_pretrained(folder, max_shard_size="500KB")
    assert (folder / "model.safetensors.index.json").exists()
    return folder


def test_a_sharded_checkpoint_loads(sharded, original):
    loaded = JatModel.from_pretrained(sharded)
    expected = load_file(original / WEIGHTS)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())


def test_a_missing_or_truncated_shard_names_it(sharded):
    shards = sorted(p for p in os.listdir(sharded) if p.endswith(".safetensors"))
    data = (sharded / shards[-1]).read_bytes()
    write(sharded / shards[-1], data[: len(data) // 3])
    refused(sharded, sharded / shards[-1], "truncated or damaged")
    os.remove(sharded / shards[-1])
    refused(sharded, sharded / shards[-1], "no such file")


@pytest.mark.parametrize("text", ["{", "[]", '{"metadata": {}}', '{"weight_map": 3}'])
def test_a_bad_shard_index_names_it(sharded, text):
    write(sharded / "model.safetensors.index.json", text)
    refused(sharded, sharded / "model.safetensors.index.json")


def test_a_missing_weight_of_a_sharded_checkpoint_names_the_index(sharded):
    shards = sorted(p for p in os.listdir(sharded) if p.endswith(".safetensors"))
    weights = load_file(sharded / shards[0])
    key = sorted(weights)[0]
    weights.pop(key)
    save_file(weights, sharded / shards[0], metadata={"format": "pt"})
    refused(sharded, sharded / "model.safetensors.index.json", key)


def test_weights_given_as_a_state_dict_are_checked_too(original):
    config = JatConfig.from_pretrained(original)
    weights = load_file(original / WEIGHTS)
    weights.pop("lm_head.weight")
    with pytest.raises(CheckpointError, match=r"^state_dict: the weights do not fit the model: missing weights lm_head.weight$"):
        JatModel.from_pretrained(None, config=config, state_dict=weights)


# -- intact checkpoints still load -------------------------------------------------------------------------------
def test_an_intact_checkpoint_loads_exactly(checkpoint, original):
    before = snapshot(checkpoint)
    model, info = JatModel.from_pretrained(checkpoint, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    expected = load_file(original / WEIGHTS)
    assert sorted(model.state_dict()) == sorted(expected)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    assert isinstance(AutoModel.from_pretrained(checkpoint), JatModel)
    assert snapshot(checkpoint) == before
