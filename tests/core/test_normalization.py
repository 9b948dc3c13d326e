"""Input normalisation: statistics, the config field, the processor and the agent apply it the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jat_core import normalization
from jat_core.config import JatConfig
from jat_core.model import JatModel
from jat_core.processor import JatProcessor
from jat_core.specs import FieldSpec, TaskSpec

ROBOT = TaskSpec(
    "test-robot",
    "test",
    (FieldSpec("continuous_observations", "continuous", (5,), "float32"),),
    FieldSpec("continuous_actions", "continuous", (2,), "float32", low=-1, high=1),
)
GRID = TaskSpec(
    "test-grid",
    "test",
    (FieldSpec("discrete_observations", "discrete", (6,), "int64", n=4),),
    FieldSpec("discrete_actions", "discrete", (), "int64", n=3),
)
MEAN = [0.5, -1.0, 0.0, 2.0, 0.1]
STD = [0.05, 2.0, 1.0, 0.5, 0.01]
STATS = {ROBOT.name: {"continuous_observations": {"mean": MEAN, "std": STD}, "rewards": {"mean": [3.0], "std": [4.0]}}}


def test_moments_match_numpy_and_floor_the_std():
    rng = np.random.default_rng(0)
    x = rng.normal([1.0, -2.0, 5.0], [0.5, 3.0, 0.0], size=(1000, 3))  # the last value never moves
    moments = normalization.Moments(3)
    moments.add(x[:400])
    moments.add(x[400:])
    stats = moments.stats()
    np.testing.assert_allclose(stats["mean"], x.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats["std"][:2], x.std(0)[:2], rtol=1e-9)
    assert stats["std"][2] == normalization.MIN_STD
    for key in ("mean", "std"):
        np.testing.assert_allclose(normalization.field_stats(x)[key], stats[key], rtol=1e-12)
    with pytest.raises(ValueError, match="no values"):
        normalization.Moments(2).stats()


def test_normalize_standardises_clips_and_keeps_the_shape():
    stats = {"mean": MEAN, "std": STD}
    x = np.asarray(MEAN, dtype=np.float32) + np.asarray(STD, dtype=np.float32) * np.array([1, -2, 0, 3, 50])
    out = normalization.normalize(np.broadcast_to(x, (2, 3, 5)), stats, where="w")
    assert out.shape == (2, 3, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 2], [1, -2, 0, 3, normalization.CLIP], atol=1e-4)
    with pytest.raises(ValueError, match="w: the model's input normalisation has 5 values per step"):
        normalization.normalize(np.zeros((2, 4)), stats, where="w")


@pytest.mark.parametrize(
    "value, message",
    [
        ([1], "a dict"),
        ({"t": {"f": {"mean": [0.0], "std": [0.0]}}}, "'t' field 'f': finite means and positive"),
        ({"t": {"f": {"mean": [0.0, 1.0], "std": [1.0]}}}, "'t' field 'f': {'mean'"),
        ({"t": {"f": {"mean": [float("nan")], "std": [1.0]}}}, "finite means"),
    ],
)
def test_config_rejects_malformed_statistics_in_one_line(value, message):
    with pytest.raises(ValueError, match=r"JatConfig.input_normalization: expected ") as info:
        JatConfig.from_preset("tiny", input_normalization=value)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_config_round_trip_keeps_the_statistics(tmp_path):
    config = JatConfig.from_preset("tiny", vocab_size=64, input_normalization=STATS)
    config.save_pretrained(tmp_path)
    assert JatConfig.from_pretrained(tmp_path).input_normalization == STATS
    assert JatConfig.from_preset("tiny").input_normalization == {}  # the published model: raw inputs


def test_processor_normalises_float_fields_and_rewards_of_its_task_only():
    processor = JatProcessor(None, config=JatConfig.from_preset("tiny", vocab_size=64, input_normalization=STATS))
    raw = np.asarray(MEAN, dtype=np.float32) + np.asarray(STD, dtype=np.float32)  # one std above the mean
    obs = processor.prepare_observations(ROBOT, {"continuous_observations": np.tile(raw, (2, 3, 1))})
    torch.testing.assert_close(obs["continuous_observations"], torch.ones(2, 3, 5), atol=1e-5, rtol=0)
    rewards = processor.prepare_rewards(np.full((2, 3), 7.0), ROBOT)["rewards"]
    torch.testing.assert_close(rewards, torch.ones(2, 3))
    assert torch.equal(processor.prepare_rewards(np.full((2, 3), 7.0))["rewards"], torch.full((2, 3), 7.0))
    other = TaskSpec("test-other", "test", ROBOT.observation, ROBOT.action)  # no statistics: raw
    raw_batch = processor.prepare_observations(other, {"continuous_observations": np.tile(raw, (2, 3, 1))})
    torch.testing.assert_close(raw_batch["continuous_observations"], torch.from_numpy(np.tile(raw, (2, 3, 1))))
    grid = np.arange(36).reshape(2, 3, 6) % 4
    stats_on_ints = {GRID.name: {"discrete_observations": {"mean": [1.0] * 6, "std": [2.0] * 6}}}
    ints = JatProcessor(None, config=JatConfig.from_preset("tiny", vocab_size=64, input_normalization=stats_on_ints))
    assert torch.equal(ints.prepare_observations(GRID, {"discrete_observations": grid})["discrete_observations"],
                       torch.from_numpy(grid))  # integers are never normalised


def test_agent_sees_the_inputs_training_sees():
    """The agent's incremental prediction equals a full forward over the processor's (normalised) batch, and
    differs from the same weights without statistics."""
    torch.manual_seed(0)
    config = JatConfig.from_preset("tiny", vocab_size=64, max_position_embeddings=24, window_size=6,
                                   input_normalization=STATS)
    model = JatModel(config).eval()
    raw_model = JatModel(JatConfig.from_preset("tiny", vocab_size=64, max_position_embeddings=24, window_size=6)).eval()
    raw_model.load_state_dict(model.state_dict())
    processor = JatProcessor.from_model(model, None)
    agent, raw_agent = model.agent(ROBOT), raw_model.agent(ROBOT)
    agent.reset(num_envs=1)
    raw_agent.reset(num_envs=1)
    rng = np.random.default_rng(1)
    observations, rewards, actions = [], [], []
    for t in range(5):
        obs = (np.asarray(MEAN) + np.asarray(STD) * rng.standard_normal(5)).astype(np.float32)
        reward = float(rng.uniform(0, 8))
        observations.append(obs)
        rewards.append(0.0 if t == 0 else reward)
        action = agent.act({"continuous_observations": obs[None]}, np.array([reward]))
        raw_agent.act({"continuous_observations": obs[None]}, np.array([reward]))
        batch = processor.prepare_observations(ROBOT, {"continuous_observations": np.stack(observations)[None]})
        batch |= processor.prepare_actions(ROBOT, np.stack(actions + [np.zeros(2, np.float32)])[None])
        batch |= processor.prepare_rewards(np.asarray(rewards, dtype=np.float32)[None], ROBOT)
        with torch.no_grad():
            expected = model(**batch, return_loss=False).pred_actions[0, t]
        torch.testing.assert_close(agent.last_prediction[0], expected, atol=1e-4, rtol=0, msg=f"step {t}")
        assert not torch.allclose(raw_agent.last_prediction[0], expected, atol=1e-3)
        actions.append(action[0])
