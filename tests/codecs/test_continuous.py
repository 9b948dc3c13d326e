import numpy as np
import pytest
import torch
from codec_helpers import B, T, shared_parts, tiny_config
from jat_codecs import continuous, plugin
from jat_codecs.continuous import ContinuousCodec, cyclic_expand
from jat_core import FieldSpec
from jat_core.codec import ACTION, OBSERVATION
from jat_core.testing import CodecConformance

torch.set_num_threads(1)
OBS, ACT = 5, 3


class TestContinuousConformance(CodecConformance):
    plugin = plugin
    codec_name = "continuous"

    def make_codec(self):
        config = tiny_config()
        return continuous.build(config, shared_parts(config))

    def example(self, role):
        g = torch.Generator().manual_seed(1)
        if role == OBSERVATION:
            return torch.randn(B, T, OBS, generator=g), torch.randn(B, T, generator=g)
        return torch.rand(B, T, ACT, generator=g) * 2 - 1, None

    def action_field(self):
        return FieldSpec("continuous_actions", "continuous", (ACT,), low=-0.5, high=0.5)

    def raw_example(self, role):
        return np.random.default_rng(0).normal(size=(B, T, OBS if role == OBSERVATION else ACT)).astype(np.float64)

    def bad_examples(self, role):
        if role == OBSERVATION:
            return [
                (torch.randn(B, T, OBS), None),  # missing reward
                (torch.randn(B, T, OBS), torch.randn(B, T + 1)),  # reward of the wrong shape
                (torch.randn(B, T, 377), torch.randn(B, T)),  # 377 + reward > max_continuous_size
                (torch.ones(B, T, OBS, dtype=torch.int64), torch.randn(B, T)),  # integers
                (torch.randn(B, OBS), torch.randn(B, T)),  # no time axis
            ]
        return [(torch.randn(B, T, 378), None), (torch.randn(B, T), None)]


def test_cyclic_expand_repeats_not_pads():
    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    assert cyclic_expand(x, 7).tolist() == [[[1, 2, 3, 1, 2, 3, 1]]]


def test_observation_encoding_is_linear_of_cyclic_obs_plus_reward():
    codec = ContinuousCodec(hidden_size=16, max_size=11)
    obs, rew = torch.randn(B, T, 3), torch.randn(B, T)
    x = torch.cat((obs, rew[..., None]), -1)[..., [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]]
    expected = x @ codec.encoder.weight.T + codec.encoder.bias
    torch.testing.assert_close(codec.encode(obs, rew, role=OBSERVATION), expected)


def test_actions_and_observations_share_the_layers():
    codec = ContinuousCodec(hidden_size=16, max_size=11)
    act = torch.randn(B, T, 4)
    obs, rew = act[..., :3], act[..., 3]  # the same 4 numbers seen as observation + reward
    torch.testing.assert_close(codec.encode(act, role=ACTION), codec.encode(obs, rew, role=OBSERVATION))


def test_loss_counts_each_value_once_reference_quirk_fixed():
    """The reference averages over the 377 cyclic copies, so with 377 = 75 * 5 + 2 the first two values of a
    4-value observation + reward count 76 times and the others 75. Here every value counts once."""
    codec = ContinuousCodec(hidden_size=8, max_size=377)
    obs, rew = torch.zeros(1, 1, 4), torch.zeros(1, 1)
    preds = torch.zeros(1, 1, 377)
    preds[..., 0] = 1.0  # error only on the first value (which the reference repeats 76 times)
    ours = codec.loss(preds, obs, torch.ones(1, 1, dtype=torch.bool), role=OBSERVATION, rewards=rew)
    assert float(ours) == pytest.approx(1.0 / 5)  # mean over the 5 distinct values
    reference_style = ((preds - cyclic_expand(torch.cat((obs, rew[..., None]), -1), 377)) ** 2).mean()
    assert float(reference_style) == pytest.approx(1.0 / 377)  # the quirk: only 1 of 377 copies is wrong
    # action: the 3 action values only
    act_preds = torch.zeros(1, 1, 377)
    act_preds[..., 5] = 3.0  # beyond the action size: not part of the action loss
    assert float(codec.loss(act_preds, torch.zeros(1, 1, 3), torch.ones(1, 1), role=ACTION)) == 0.0


def test_decode_size_and_crop():
    codec = ContinuousCodec(hidden_size=8, max_size=20)
    hidden = torch.randn(B, T, 8)
    full = codec.decode(hidden, role=ACTION)
    assert full.shape == (B, T, 20)
    torch.testing.assert_close(codec.decode(hidden, role=ACTION, size=6), full[..., :6])
    assert codec.crop(full, torch.zeros(B, T, 6), role=ACTION).shape == (B, T, 6)


def test_bad_observation_message_names_expected_and_actual():
    codec = ContinuousCodec(hidden_size=8, max_size=20)
    with pytest.raises(ValueError, match=r"continuous_observations: expected at most 19 values.*got 25"):
        codec.encode(torch.randn(B, T, 25), torch.zeros(B, T), role=OBSERVATION)
    with pytest.raises(ValueError, match=r"rewards: expected a float tensor of shape \(2, 3\).*got None"):
        codec.encode(torch.randn(B, T, 5), None, role=OBSERVATION)
