"""A new modality is a plugin: a point-cloud codec defined here, and a domain whose observations are point clouds,
are collected (``jat-collect``'s writer, with the domain's expert), trained (``jat-train``) and acted with
(``model.agent``) through the public hooks only. Nothing in jat-core, jat-codecs or jat-train names the codec:
a model built without ``JatConfig.codecs`` builds every registered codec, the trainer routes the codec's column,
the agent asks the codec's ``encode`` for observations."""

from __future__ import annotations

import types

import jat_codecs.plugin
import numpy as np
import pytest
import torch
from jat_core import DatasetSpec, FieldSpec, TaskSpec, hookimpl, load_plugins
from jat_core.codec import OBSERVATION, Codec
from torch import nn

POINTS = 8  # points per cloud
STEPS = 6  # steps per episode
#: a very small model (as the trainer tests'): 1 layer, H=64, 16 tokens of context, a 300-token vocabulary
MODEL = {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 16, "window_size": 8,
         "vocab_size": 300}


# -- the codec plugin ---------------------------------------------------------------------------------------------
class PointCloudCodec(Codec):
    """``(B, T, P, 3)`` point clouds (with the reward) -> one token: a shared per-point MLP, max-pooled (PointNet)."""

    name = "pointcloud"
    roles = (OBSERVATION,)
    columns = {OBSERVATION: "pointcloud_observations"}

    def __init__(self, hidden_size: int, width: int) -> None:
        super().__init__()
        self.point = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width))
        self.out = nn.Linear(width + 1, hidden_size)

    def prepare(self, values, *, role: str) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float32))

    def encode(self, values, rewards=None, *, role: str) -> torch.Tensor:
        x = torch.as_tensor(values)
        if x.dim() != 4 or x.shape[-1] != 3:
            raise ValueError(f"pointcloud_observations: expected shape (B, T, P, 3), got {tuple(x.shape)}")
        features = self.point(x.to(self.out.weight.dtype)).amax(dim=2)  # (B, T, width)
        r = torch.as_tensor(rewards).to(features.dtype)[..., None]  # (B, T, 1)
        return self.out(torch.cat((features, r), dim=-1))  # (B, T, H)


@hookimpl
def jat_register_codecs(register):
    # its option comes through the generic JatConfig.codec_settings: nothing to declare
    register("pointcloud", lambda config, shared: PointCloudCodec(
        config.hidden_size, config.codec_setting("pointcloud", "width", 32)))


# -- the domain plugin: which side of the plane x = 0 does the cloud lie on? --------------------------------------
def make_env(**kwargs):
    import gymnasium as gym

    class Side(gym.Env):
        observation_space = gym.spaces.Dict(
            {"pointcloud_observations": gym.spaces.Box(-2.0, 2.0, (POINTS, 3), np.float32)})
        action_space = gym.spaces.Discrete(2)  # 0: left (x < 0), 1: right

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return self._obs(), {}

        def _obs(self):
            side = self.np_random.choice([-1.0, 1.0])
            cloud = self.np_random.normal(0.0, 0.2, size=(POINTS, 3)) + np.array([side, 0.0, 0.0])
            self.answer = int(side > 0)
            return {"pointcloud_observations": np.clip(cloud, -2, 2).astype(np.float32)}

        def step(self, action):
            reward = float(int(action) == self.answer)
            self.t += 1
            return self._obs(), reward, False, self.t >= STEPS, {}

    return Side()


def expert(env):
    return lambda observation: int(observation["pointcloud_observations"][:, 0].mean() > 0)


TASK = TaskSpec(
    name="points-side",
    domain="points",
    observation=(FieldSpec("pointcloud_observations", codec="pointcloud", shape=(POINTS, 3), low=-2.0, high=2.0),),
    action=FieldSpec("discrete_actions", codec="discrete", shape=(), dtype="int64", n=2),
    make_env=make_env,
    expert=expert,
    dataset=DatasetSpec(repo="nobody/points", config="points-side"),
)


@hookimpl
def jat_register_tasks(register):
    register(TASK)


POINTS_PLUGIN = types.SimpleNamespace(jat_register_codecs=jat_register_codecs, jat_register_tasks=jat_register_tasks)


@pytest.fixture(scope="module")
def registry():
    """The installed codecs plus the point-cloud plugin, as ``load_plugins`` builds it for an installed one."""
    return load_plugins(extra={"codecs": jat_codecs.plugin, "points": POINTS_PLUGIN}, entry_points=False)


def test_the_plugin_codec_is_built_by_default(registry):
    from jat_core import JatConfig, JatModel

    model = JatModel(JatConfig.from_preset("tiny", **MODEL), registry=registry)
    assert list(model.codecs) == [*jat_codecs.plugin.CODECS, "pointcloud"]
    assert model.config.codecs == list(model.codecs)
    assert model.codec_for("pointcloud_observations") == (model.codecs["pointcloud"], OBSERVATION)


def test_a_new_modality_is_collected_trained_and_acts(tmp_path, registry):
    from jat_core.model import JatModel
    from jat_train.collection.collect import collect_to_disk
    from jat_train.training.trainer import TrainConfig, read_log, train

    data = str(tmp_path / "data")
    collect_to_disk(TASK, 24, data, seed=0, progress=False)
    config = TrainConfig(data=data, output_dir=str(tmp_path / "run"), preset="tiny", model_overrides=MODEL,
                         max_steps=120, save_every=120, batch_size=4, learning_rate=3e-3, seed=0, num_threads=1,
                         progress=False, mixed_precision="no")
    result = train(config, registry=registry)
    losses = [r["action_loss"] for r in read_log(result.output_dir)]
    assert len(losses) == 120 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.1, losses  # from ln(300) = 5.7 to a right answer (chance: ln 2 = 0.69)

    model = JatModel.from_pretrained(result.checkpoint, registry=registry).eval()
    assert "pointcloud" in model.config.codecs
    agent = model.agent(TASK)
    envs = [make_env() for _ in range(4)]
    observations = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
    agent.reset(num_envs=len(envs))
    rewards, returns = np.zeros(len(envs), np.float32), np.zeros(len(envs))
    for _ in range(STEPS):
        batch = {"pointcloud_observations": np.stack([o["pointcloud_observations"] for o in observations])}
        actions = agent.act(batch, rewards)
        assert actions.shape == (len(envs),) and set(actions.tolist()) <= {0, 1}
        steps = [env.step(int(a)) for env, a in zip(envs, actions)]
        observations = [s[0] for s in steps]
        rewards = np.array([s[1] for s in steps], np.float32)
        returns += rewards
    assert returns.sum() >= 0.9 * STEPS * len(envs), returns  # it learned the task: the codec's features are used
