"""jat-convert: published checkpoint format -> ours, and parity with the reference's outputs."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from jat_core.codec import ACTION
from jat_core.convert import convert, main, map_keys
from jat_core.model import JatModel
from safetensors.torch import load_file, save_file

FIXTURE = Path(__file__).parent.parent / "fixtures" / "reference-parity"
CHECKPOINT = FIXTURE / "reference-checkpoint"
CASES = ("continuous", "discrete", "image", "text", "caption")
PREDICTIONS = ("pred_actions", "pred_observations", "logits")
#: Losses that the quirk fixes do not touch (no loss_weight in the fixture; the continuous MSE is fixed).
SAME_LOSSES = {
    "discrete": ("loss", "action_loss"),
    "image": ("loss", "action_loss", "observation_loss"),
    "text": ("loss",),
    "caption": ("loss",),
}


def cases():
    inputs, outputs = load_file(FIXTURE / "inputs.safetensors"), load_file(FIXTURE / "outputs.safetensors")
    for case in CASES:
        batch = {k.split(".", 1)[1]: v for k, v in inputs.items() if k.startswith(case + ".")}
        expected = {k.split(".", 1)[1]: v for k, v in outputs.items() if k.startswith(case + ".")}
        yield case, batch, expected


def relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours - ref| / max |ref|."""
    return float((ours - ref).abs().max() / ref.abs().max())


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    convert(str(CHECKPOINT), str(out))
    return out


@pytest.fixture(scope="module")
def model(converted):
    return JatModel.from_pretrained(converted).eval()


@pytest.mark.parametrize("case", CASES)
def test_predictions_match_the_reference(model, case):
    _, batch, expected = next(c for c in cases() if c[0] == case)
    with torch.no_grad():
        out = model(**batch)
    mask = batch.get("attention_mask")
    checked = 0
    for field in PREDICTIONS:
        if field not in expected:
            continue
        ours, ref = out[field], expected[field]
        assert ours is not None and ours.shape == ref.shape, f"{case}.{field}: {None if ours is None else ours.shape}"
        if mask is not None and ours.shape[1] == mask.shape[1]:  # valid positions only
            ours, ref = ours[mask], ref[mask]
        err = relative_error(ours, ref)
        print(f"{case}.{field}: max relative error {err:.2e}")
        assert err < 1e-5, f"{case}.{field}: relative error {err}"
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
        checked += 1
    assert checked
    for field in SAME_LOSSES.get(case, ()):
        torch.testing.assert_close(out[field], expected[field], rtol=1e-5, atol=1e-7)


def test_continuous_loss_differs_only_by_the_fixed_quirk(model):
    """The reference's continuous losses average over the 377 cyclic copies; computed that way from our
    decoder they match the reference, while our loss (each value once) differs."""
    _, batch, expected = next(c for c in cases() if c[0] == "continuous")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        hidden = out.hidden_states[-1]
        codec = model.codecs["continuous"]
        preds_act = codec.decode(hidden[:, 0::2], role=ACTION)  # (B, T, 377)
        preds_obs = codec.decode(hidden[:, 1::2], role="observation")
    obs, act, rew, mask = (batch[k] for k in ("continuous_observations", "continuous_actions", "rewards", "attention_mask"))
    index = torch.arange(377)
    act_target = act[..., index % act.shape[-1]]
    x = torch.cat((obs, rew[..., None]), -1)
    obs_target = x[..., index % x.shape[-1]]
    ref_act = ((preds_act - act_target) ** 2).mean(-1)[mask].mean()
    ref_obs = ((preds_obs[:, :-1] - obs_target[:, 1:]) ** 2).mean(-1)[mask[:, 1:]].mean()
    torch.testing.assert_close(ref_act, expected["action_loss"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ref_obs, expected["observation_loss"], rtol=1e-5, atol=1e-7)
    assert abs(float(out.action_loss) - float(expected["action_loss"])) > 1e-4


def test_converted_directory_is_our_format(converted):
    assert (converted / "model.safetensors").exists()
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "jat" and "auto_map" not in config
    keys = set(load_file(converted / "model.safetensors"))
    assert "lm_head.weight" in keys and "codecs.discrete.project.weight" in keys
    assert not any(k.startswith("multi_discrete_decoder") for k in keys)


def test_pytorch_bin_with_token_table_aliases(tmp_path, model):
    """A .bin checkpoint (read with weights_only=True) that stores the token table under its alias names."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CHECKPOINT / "config.json", src / "config.json")
    state = load_file(CHECKPOINT / "model.safetensors")
    table = state.pop("transformer.wte.weight")
    state["single_discrete_encoder.weight"] = table
    state["multi_discrete_encoder.0.weight"] = table.clone()
    torch.save(state, src / "pytorch_model.bin")
    (src / "tokenizer.json").write_text("{}")
    out = tmp_path / "out"
    assert main([str(src), str(out)]) == 0
    assert (out / "tokenizer.json").exists()
    loaded = JatModel.from_pretrained(out)
    assert torch.equal(loaded.transformer.wte.weight, model.transformer.wte.weight)
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)


def test_bad_checkpoints_are_refused(tmp_path, capsys):
    state = load_file(CHECKPOINT / "model.safetensors")
    with pytest.raises(ValueError, match="unknown keys"):
        map_keys({**state, "extra_head.weight": torch.zeros(1)})
    aliases = {**state, "single_discrete_encoder.weight": state["transformer.wte.weight"] + 1}
    with pytest.raises(ValueError, match="token table aliases"):
        map_keys(aliases)
    with pytest.raises(ValueError, match="does not exist"):
        convert("/nonexistent/checkpoint")
    with pytest.raises(ValueError, match="expected a token table"):
        map_keys({k: v for k, v in state.items() if k != "transformer.wte.weight"})
    src = tmp_path / "broken"
    src.mkdir()
    shutil.copy(CHECKPOINT / "config.json", src / "config.json")
    save_file({k: v for k, v in state.items() if not k.startswith("vit_encoder")}, src / "model.safetensors")
    assert main([str(src), str(tmp_path / "out")]) == 2
    assert "missing parameters ['codecs.vit.projection.bias'" in capsys.readouterr().err
