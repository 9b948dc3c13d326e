"""examples/sb3_policy.py: a Stable-Baselines3 model as a ``jat-collect --policy module:factory`` policy.

The contract is tested with a stand-in object that has SB3's ``predict``; with Stable-Baselines3 installed, a
real model is trained for a moment, saved, and collected from with ``jat-collect --policy sb3_policy:factory``.
"""

import pathlib
import sys

import datasets
import gymnasium as gym
import numpy as np
import pytest
from jat_train import cli
from jat_train.collection.collect import collect, load_policy_factory

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def sb3_policy(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "sb3_policy", raising=False)
    import sb3_policy

    sb3_policy.load_model.cache_clear()
    return sb3_policy


@pytest.fixture(scope="module")
def registry():
    from jat_core import load_plugins

    return load_plugins()


class Recorder:
    """Stands in for an SB3 model: ``predict(obs, deterministic)`` -> ``(action, state)``, remembering its inputs."""

    def __init__(self, action):
        self.action, self.seen = action, []

    def predict(self, observation, deterministic=True):
        self.seen.append((np.array(observation), deterministic))
        return np.array(self.action), None


def test_continuous_actions_from_the_only_field(sb3_policy, registry):
    task = registry.task("mujoco-reacher")
    model = Recorder([[0.25, -0.5]])  # SB3 returns a batch-shaped array for a batched observation
    data = collect(task, 1, seed=0, policy_factory=sb3_policy.policy_factory(model), progress=False, test_fraction=0)
    actions = np.asarray(data["train"][0]["continuous_actions"], dtype=np.float32)
    assert actions.shape == (50, 2) and np.all(actions == np.float32([0.25, -0.5]))
    obs = np.asarray(data["train"][0]["continuous_observations"], dtype=np.float32)
    assert np.array_equal(np.stack([o for o, _ in model.seen]), obs)  # the model saw the field's vector
    assert all(det is True for _, det in model.seen)


def test_discrete_actions_and_field_choice(sb3_policy):
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    policy = sb3_policy.policy_factory(Recorder(np.array([1])), field="b")(env)
    action = policy({"a": np.zeros(2), "b": np.ones(4)})
    assert action == 1 and type(action) is int
    with pytest.raises(ValueError, match="set SB3_FIELD"):
        sb3_policy.policy_factory(Recorder(0))(env)({"a": 0, "b": 1})


def test_factory_errors_are_one_line(sb3_policy, monkeypatch, tmp_path):
    env = gym.make("CartPole-v1")
    monkeypatch.delenv("SB3_MODEL", raising=False)
    with pytest.raises(ValueError, match="SB3_MODEL: set it"):
        sb3_policy.factory(env)
    monkeypatch.setenv("SB3_MODEL", str(tmp_path / "missing.zip"))
    with pytest.raises(ValueError, match="no such file .*missing.zip"):
        sb3_policy.factory(env)
    assert load_policy_factory("sb3_policy:factory") is sb3_policy.factory  # how jat-collect resolves it


def test_jat_collect_with_a_real_sb3_model(sb3_policy, monkeypatch, tmp_path, capsys):
    sb3 = pytest.importorskip("stable_baselines3")
    model = sb3.PPO("MlpPolicy", gym.make("InvertedPendulum-v4"), n_steps=64, batch_size=32, n_epochs=1, seed=0,
                    device="cpu")
    model.learn(64)
    model.save(tmp_path / "agent.zip")
    monkeypatch.setenv("SB3_MODEL", str(tmp_path / "agent.zip"))
    monkeypatch.setenv("SB3_ALGO", "PPO")
    argv = ["--tasks", "mujoco-pendulum", "--episodes", "2", "--out", str(tmp_path / "data"),
            "--policy", "sb3_policy:factory", "--no-progress"]
    assert cli.collect_main(argv) == 0, capsys.readouterr().err
    episode = datasets.load_from_disk(str(tmp_path / "data" / "mujoco-pendulum"))["train"][0]
    obs = np.asarray(episode["continuous_observations"], dtype=np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    assert np.allclose(np.asarray(episode["continuous_actions"]), expected, atol=1e-6)
