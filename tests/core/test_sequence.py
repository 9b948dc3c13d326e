import numpy as np
import pytest
import torch
from jat_core.sequence import (
    deinterleave,
    extend_mask,
    interleave,
    interleave_mask,
    pad_steps,
    shift_rewards,
    split_windows,
    weighted_mean,
    window_bounds,
)


def test_interleave_alternates_observation_and_action_tokens():
    obs = torch.arange(6.0).view(1, 3, 2)  # o_t = [2t, 2t+1]
    act = -obs
    x = interleave(obs, act)
    assert x.shape == (1, 6, 2)
    assert x[0, :, 0].tolist() == [0, -0, 2, -2, 4, -4]
    o, a = deinterleave(x)
    assert torch.equal(o, obs) and torch.equal(a, act)


def test_interleave_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        interleave(torch.zeros(1, 3, 2), torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="even length"):
        deinterleave(torch.zeros(1, 5, 2))


def test_step_mask_is_repeated_for_both_tokens():
    mask = torch.tensor([[True, True, False]])
    assert interleave_mask(mask).tolist() == [[True, True, True, True, False, False]]


def test_extend_mask_prepends_valid_tokens():
    mask = torch.tensor([[1, 0]])
    assert extend_mask(mask, 1, 4).tolist() == [[True, True, True, False]]
    assert extend_mask(None, 2, 3).all() and extend_mask(None, 2, 3).shape == (2, 3)
    with pytest.raises(ValueError, match="at most 1 positions, got 2"):
        extend_mask(mask, 1, 1)


def test_windows_keep_every_step():
    assert window_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert window_bounds(8, 4) == [(0, 4), (4, 8)]
    assert window_bounds(0, 4) == []
    pieces = split_windows(np.arange(10), 4)
    assert np.concatenate(pieces).tolist() == list(range(10))
    with pytest.raises(ValueError):
        window_bounds(3, 0)


def test_pad_steps_pads_at_the_end_with_a_mask():
    values, mask = pad_steps([np.ones((3, 2)), np.ones((1, 2)) * 2])
    assert values.shape == (2, 3, 2)
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert values[1, 1:].abs().sum() == 0 and values[1, 0].tolist() == [2, 2]
    values, mask = pad_steps([np.arange(2)], length=4, value=-1)
    assert values.tolist() == [[0, 1, -1, -1]]
    with pytest.raises(ValueError, match="more than length"):
        pad_steps([np.arange(5)], length=4)
    with pytest.raises(ValueError, match="step shape"):
        pad_steps([np.zeros((2, 3)), np.zeros((2, 4))])


def test_rewards_are_shifted_to_the_next_observation():
    assert shift_rewards([1.0, 2.0, 3.0]).tolist() == [0.0, 1.0, 2.0]
    assert shift_rewards([]).tolist() == []
    with pytest.raises(ValueError):
        shift_rewards(np.zeros((2, 2)))


def test_weighted_mean_is_the_reference_reduction():
    loss = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, 5.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert float(weighted_mean(loss, mask)) == pytest.approx((1 + 2 + 3 + 4 + 5) / 5)
    w = torch.tensor([[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])
    assert float(weighted_mean(loss, mask, w)) == pytest.approx((2 + 4 + 3 + 4 + 5) / 5)
    assert float(weighted_mean(loss, torch.zeros_like(mask))) == 0.0  # no valid step: 0, not NaN
