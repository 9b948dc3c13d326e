import numpy as np
import pytest
import torch
import torch.nn.functional as F
from codec_helpers import VOCAB, B, T, shared_parts, tiny_config
from jat_codecs import discrete, plugin
from jat_core import FieldSpec
from jat_core.codec import ACTION, OBSERVATION
from jat_core.testing import CodecConformance

torch.set_num_threads(1)


def make():
    config = tiny_config()
    return discrete.build(config, shared_parts(config)), config


class TestDiscreteConformance(CodecConformance):
    plugin = plugin
    codec_name = "discrete"

    def make_codec(self):
        return make()[0]

    def example(self, role):
        g = torch.Generator().manual_seed(2)
        if role == OBSERVATION:
            return torch.randint(0, VOCAB, (B, T, 212), generator=g), torch.randn(B, T, generator=g)
        return torch.randint(0, 7, (B, T), generator=g), None

    def action_field(self):
        return FieldSpec("discrete_actions", "discrete", (), "int64", n=7)

    def raw_example(self, role):
        rng = np.random.default_rng(0)
        return rng.integers(0, 10, size=(B, T, 212) if role == OBSERVATION else (B, T), dtype=np.int32)

    def bad_examples(self, role):
        if role == OBSERVATION:
            return [
                (torch.zeros(B, T, 211, dtype=torch.long), torch.zeros(B, T)),  # not 212 values
                (torch.zeros(B, T, 213, dtype=torch.long), torch.zeros(B, T)),  # longer than accepted
                (torch.full((B, T, 212), VOCAB), torch.zeros(B, T)),  # out of the vocabulary
                (torch.zeros(B, T, 212), torch.zeros(B, T)),  # floats
                (torch.zeros(B, T, 212, dtype=torch.long), None),  # missing reward
            ]
        return [(torch.full((B, T), -1), None), (torch.full((B, T), VOCAB), None), (torch.zeros(B, T, 2).long(), None)]


def test_observation_encoding_matches_reference_maths():
    codec, config = make()
    ids, rew = TestDiscreteConformance().example(OBSERVATION)
    wte = codec.shared.wte
    x = F.relu(codec.reduce(wte(ids))).flatten(2)  # (B, T, 212 * H // 50)
    expected = torch.cat((codec.project(x), rew[..., None]), -1)
    out = codec.encode(ids, rew, role=OBSERVATION)
    assert out.shape == (B, T, config.hidden_size)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(out[..., -1], rew)  # the reward is the last feature
    assert codec.reduce.weight.shape == (config.hidden_size // 50, config.hidden_size)
    assert codec.project.weight.shape == (config.hidden_size - 1, 212 * (config.hidden_size // 50))


def test_small_and_large_batches_take_the_same_maths():
    """One step (agent) goes through wte then reduce; a long window through a (vocab, H//50) table."""
    codec, _ = make()
    ids = torch.randint(0, VOCAB, (1, 4, 212))  # 848 ids > 300 vocabulary: table path
    rew = torch.randn(1, 4)
    long = codec.encode(ids, rew, role=OBSERVATION)
    short = torch.cat([codec.encode(ids[:, t : t + 1], rew[:, t : t + 1], role=OBSERVATION) for t in range(4)], 1)
    torch.testing.assert_close(long, short, rtol=1e-5, atol=1e-6)
    # and the same gradients (the table path applies the ReLU to the table's rows before the look-up)
    params, grads = (codec.shared.wte.weight, codec.reduce.weight, codec.reduce.bias), []
    for out in (long, short):
        for p in params:
            p.grad = None
        out.square().sum().backward(retain_graph=True)
        grads.append([p.grad for p in params])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_actions_are_token_rows_and_logits_come_from_the_head():
    codec, _ = make()
    actions = torch.tensor([[0, 3, 6]])
    torch.testing.assert_close(codec.encode(actions, role=ACTION), codec.shared.wte.weight[actions])
    hidden = torch.randn(1, 3, codec.shared.wte.embedding_dim)
    logits = codec.decode(hidden, role=ACTION)
    assert logits.shape == (1, 3, VOCAB)
    torch.testing.assert_close(codec.decode(hidden, role=ACTION, size=7), logits[..., :7])


def test_action_loss_is_cross_entropy_and_checks_range():
    codec, _ = make()
    logits = torch.randn(B, T, 7)
    actions = torch.randint(0, 7, (B, T))
    mask = torch.ones(B, T, dtype=torch.bool)
    expected = F.cross_entropy(logits.flatten(0, 1), actions.flatten(), reduction="none").view(B, T)
    torch.testing.assert_close(codec.loss(logits, actions, mask, role=ACTION), expected)
    with pytest.raises(ValueError, match=r"discrete_actions: expected actions in \[0, 7\), got range"):
        codec.loss(logits, torch.full((B, T), 9), mask, role=ACTION)


def test_observations_are_not_predicted():
    codec, _ = make()
    assert codec.predicts == (ACTION,)
    with pytest.raises(ValueError, match="actions only"):
        codec.decode(torch.randn(1, 1, 128), role=OBSERVATION)


def test_codec_does_not_own_the_shared_table():
    codec, _ = make()
    names = [n for n, _ in codec.named_parameters()]
    assert names == ["reduce.weight", "reduce.bias", "project.weight", "project.bias"]


def test_reduced_size_setting_widens_the_observation_reduction():
    """``codec_settings["discrete"]["reduced_size"]`` sets the features per integer; the default is ``H // 50``."""
    config = tiny_config()
    assert discrete.build(config, shared_parts(config)).reduce.out_features == config.hidden_size // 50
    config = tiny_config(codec_settings={"discrete": {"reduced_size": 16}})
    codec = discrete.build(config, shared_parts(config))
    assert codec.reduce.out_features == 16
    assert codec.project.in_features == 212 * 16
    ids = torch.randint(0, VOCAB, (B, T, 212))
    assert codec.encode(ids, torch.zeros(B, T), role=OBSERVATION).shape == (B, T, config.hidden_size)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "16", True])
def test_reduced_size_setting_refuses_a_bad_value(bad):
    config = tiny_config(codec_settings={"discrete": {"reduced_size": bad}})
    with pytest.raises(ValueError, match=r"codec_settings\['discrete'\]\['reduced_size'\]"):
        discrete.build(config, shared_parts(config))


def test_project_hidden_setting_adds_a_nonlinear_layer():
    """``codec_settings["discrete"]["project_hidden"]``: Linear -> ReLU -> Linear before the token, which can hold a
    conjunction of two integers (XOR of two slots) that the reference's single Linear cannot."""
    config = tiny_config(codec_settings={"discrete": {"reduced_size": 4, "project_hidden": 32}})
    codec = discrete.build(config, shared_parts(config))
    assert [n for n, _ in codec.named_parameters()] == [
        "reduce.weight", "reduce.bias", "project.0.weight", "project.0.bias", "project.2.weight", "project.2.bias"
    ]
    assert codec.project[0].in_features == 212 * 4 and codec.project[2].out_features == config.hidden_size - 1
    ids = torch.randint(0, VOCAB, (B, T, 212))
    assert codec.encode(ids, torch.zeros(B, T), role=OBSERVATION).shape == (B, T, config.hidden_size)

    def fit(settings):  # regress XOR(slot 0, slot 1) from the token's first feature
        torch.manual_seed(0)
        config = tiny_config(codec_settings={"discrete": settings})
        codec = discrete.build(config, shared_parts(config))
        bits = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
        ids = torch.zeros(4, 1, 212, dtype=torch.long)
        ids[:, 0, :2] = bits
        target = (bits[:, 0] ^ bits[:, 1]).float()
        opt = torch.optim.Adam(codec.parameters(), lr=1e-2)
        for _ in range(300):
            opt.zero_grad()
            err = ((codec.encode(ids, torch.zeros(4, 1), role=OBSERVATION)[:, 0, 0] - target) ** 2).mean()
            err.backward()
            opt.step()
        return err.item()

    assert fit({"reduced_size": 4, "project_hidden": 32}) < 1e-3
    assert fit({"reduced_size": 4}) > 0.01  # a sum of per-slot features cannot


@pytest.mark.parametrize("bad", [0, -3, 2.5, "16", True])
def test_project_hidden_setting_refuses_a_bad_value(bad):
    config = tiny_config(codec_settings={"discrete": {"project_hidden": bad}})
    with pytest.raises(ValueError, match=r"codec_settings\['discrete'\]\['project_hidden'\]"):
        discrete.build(config, shared_parts(config))


def test_project_dtype_bfloat16_runs_the_projection_in_bf16_from_fp32_weights():
    """``codec_settings["discrete"]["project_dtype"] = "bfloat16"``: the same token up to bf16 rounding, fp32 tokens
    out, fp32 weights that get fp32 gradients; "float32" (or no setting) is the fp32 maths exactly."""
    settings = {"reduced_size": 4, "project_hidden": 32}
    g = torch.Generator().manual_seed(3)
    ids, rew = torch.randint(0, VOCAB, (2, 5, 212), generator=g), torch.randn(2, 5, generator=g)
    outs = {}
    for dtype in (None, "float32", "bfloat16"):
        config = tiny_config(codec_settings={"discrete": dict(settings, project_dtype=dtype)})
        codec = discrete.build(config, shared_parts(config))
        out = codec.encode(ids, rew, role=OBSERVATION)
        out.square().mean().backward()
        assert out.dtype == torch.float32
        assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in codec.project.parameters())
        outs[dtype] = out.detach()
    assert torch.equal(outs[None], outs["float32"])
    assert not torch.equal(outs[None], outs["bfloat16"])  # the products really ran in bf16
    torch.testing.assert_close(outs["bfloat16"], outs[None], rtol=0.05, atol=0.02)
    assert discrete.build(tiny_config(codec_settings={"discrete": {"project_dtype": "bfloat16"}}),
                          shared_parts(tiny_config())).project_dtype == torch.bfloat16


@pytest.mark.parametrize("bad", ["bf16", "float16", 16, True])
def test_project_dtype_setting_refuses_a_bad_value(bad):
    config = tiny_config(codec_settings={"discrete": {"project_dtype": bad}})
    with pytest.raises(ValueError, match=r"codec_settings\['discrete'\]\['project_dtype'\]: expected one of"):
        discrete.build(config, shared_parts(config))
