"""jat-collect: local expert data in exactly the jat-dataset schema, deterministic for a seed."""

import datasets
import gymnasium as gym
import jat_core.plugins
import numpy as np
import pytest
from jat_core.plugins import Registry
from jat_core.specs import FieldSpec, TaskSpec
from jat_envs.atari import plugin as atari
from jat_envs.babyai import plugin as babyai
from jat_envs.metaworld import plugin as metaworld
from jat_envs.mujoco import plugin as mujoco
from jat_envs.text import plugin as text
from jat_train import cli
from jat_train.collection.collect import collect, collect_to_disk, features_for, split_sizes, summarize

# The columns and per-step types of jat-project/jat-dataset (docs/reference/data-schema.md; one row = one
# episode).
L, V = datasets.List, datasets.Value
REFERENCE_SCHEMA = {
    "atari-pong": {
        "image_observations": L(datasets.Image()),
        "discrete_actions": L(V("int64")),
        "rewards": L(V("float32")),
    },
    "babyai-go-to": {
        "text_observations": L(V("string")),
        "discrete_observations": L(L(V("int64"))),
        "discrete_actions": L(V("int64")),
        "rewards": L(V("float32")),
    },
    "metaworld-reach": {
        "continuous_observations": L(L(V("float32"))),
        "continuous_actions": L(L(V("float32"))),
        "rewards": L(V("float32")),
    },
    "mujoco-humanoid": {
        "continuous_observations": L(L(V("float32"))),
        "continuous_actions": L(L(V("float32"))),
        "rewards": L(V("float32")),
    },
    "oscar": {"text": V("string")},
    "wikipedia": {"text": V("string")},
    "conceptual-captions": {"images": datasets.Image(), "text": V("string")},
    "ok-vqa": {"images": datasets.Image(), "text": V("string")},
}


def build_registry() -> Registry:
    """The built-in domains' tasks (without the codec check, which is not this file's concern)."""
    registry = Registry()
    for name, module in {
        "atari": atari,
        "babyai": babyai,
        "metaworld": metaworld,
        "mujoco": mujoco,
        "text": text,
    }.items():
        module.jat_register_tasks(register=lambda spec, _n=name: registry.register_task(_n, spec))
    return registry


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture(scope="module")
def babyai_data(registry):
    return collect(registry.task("babyai-go-to-red-ball"), 2, seed=0, progress=False)


@pytest.fixture(scope="module")
def metaworld_data(registry):
    return collect(registry.task("metaworld-reach"), 2, seed=0, progress=False)


def test_features_match_the_reference_schema(registry):
    for name, expected in REFERENCE_SCHEMA.items():
        features = features_for(registry.task(name))
        assert dict(features) == expected, name
    # every task of a domain has its domain's schema
    for name in registry.domains()["metaworld"] + registry.domains()["mujoco"]:
        assert dict(features_for(registry.task(name))) == REFERENCE_SCHEMA["metaworld-reach"]


def test_split_sizes():
    assert split_sizes(1, 0.1) == (1, 0)
    assert split_sizes(2, 0.1) == (1, 1)
    assert split_sizes(100, 0.1) == (90, 10)
    assert split_sizes(10, 0.0) == (10, 0)
    with pytest.raises(ValueError, match="test_fraction"):
        split_sizes(10, 1.0)


def test_babyai_collection(registry, babyai_data):
    spec = registry.task("babyai-go-to-red-ball")
    assert set(babyai_data) == {"train", "test"}
    assert (len(babyai_data["train"]), len(babyai_data["test"])) == (1, 1)
    assert dict(babyai_data["train"].features) == REFERENCE_SCHEMA["babyai-go-to"]
    episode = babyai_data["train"][0]
    steps = len(episode["rewards"])
    assert steps > 0
    assert all(len(episode[c]) == steps for c in episode)
    assert all(len(o) == 148 for o in episode["discrete_observations"])
    assert set(episode["text_observations"]) == {"go to the red ball"}
    assert all(0 <= a < 7 for a in episode["discrete_actions"])
    assert episode["rewards"][-1] > 0 and not any(episode["rewards"][:-1])  # the bot reached the ball
    summary = summarize(spec, babyai_data)
    assert summary.normalized == pytest.approx(spec.scores.normalize(summary.mean_return))
    assert summary.normalized > 0.8


def test_metaworld_collection(registry, metaworld_data):
    assert dict(metaworld_data["test"].features) == REFERENCE_SCHEMA["metaworld-reach"]
    episode = metaworld_data["train"].with_format("numpy")[0]
    assert episode["continuous_observations"].shape == (100, 39)
    assert episode["continuous_actions"].shape == (100, 4)
    assert np.abs(episode["continuous_actions"]).max() <= 1.0
    assert summarize(registry.task("metaworld-reach"), metaworld_data).normalized > 0.8


def test_collection_is_deterministic(registry, babyai_data, metaworld_data):
    for name, data in (("babyai-go-to-red-ball", babyai_data), ("metaworld-reach", metaworld_data)):
        again = collect(registry.task(name), 2, seed=0, progress=False)
        for split in ("train", "test"):
            assert again[split].to_dict() == data[split].to_dict(), name
    other = collect(registry.task("metaworld-reach"), 2, seed=1, progress=False)
    assert other["train"].to_dict() != metaworld_data["train"].to_dict()


def test_collect_to_disk_round_trip(registry, tmp_path, metaworld_data):
    spec = registry.task("metaworld-reach")
    summary = collect_to_disk(spec, 2, str(tmp_path), seed=0, progress=False)
    assert summary.path == str(tmp_path / "metaworld-reach")
    loaded = datasets.load_from_disk(summary.path)
    assert loaded["train"].features == features_for(spec)
    assert loaded["train"].to_dict() == metaworld_data["train"].to_dict()
    assert "expert-normalised" in summary.line()
    collect_to_disk(spec, 3, str(tmp_path), seed=0, progress=False)  # replaces what was there
    assert len(datasets.load_from_disk(summary.path)["train"]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["metaworld-reach"]  # no temporary directory left


class _Frames(gym.Env):
    """A toy env with a (84, 84, 4) uint8 stack and 3 actions, 3 steps long."""

    observation_space = gym.spaces.Dict({"image_observations": gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)})
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return {"image_observations": self.np_random.integers(0, 256, (84, 84, 4), dtype=np.uint8)}

    def step(self, action):
        self.t += 1
        return self._obs(), float(action), False, self.t == 3, {}


def _toy_frames_task() -> TaskSpec:
    return TaskSpec(
        "toy-frames",
        "toy",
        (FieldSpec("image_observations", "image", (84, 84, 4), "uint8"),),
        FieldSpec("discrete_actions", "discrete", (), "int64", n=3),
        make_env=_Frames,
        expert=lambda env: lambda obs: 1,
    )


def test_images_are_stored_losslessly_and_random_policy():
    from jat_train.collection.collect import random_policy

    spec = _toy_frames_task()
    data = collect(spec, 1, seed=3, policy_factory=random_policy, progress=False)
    frames = [np.asarray(img) for img in data["train"][0]["image_observations"]]
    env = _Frames()
    obs, _ = env.reset(seed=int(np.random.default_rng(3).integers(2**31 - 1)))
    np.testing.assert_array_equal(frames[0], obs["image_observations"])
    assert data["train"][0]["image_observations"][0].mode == "RGBA"
    assert len(frames) == 3 and frames[0].shape == (84, 84, 4)


def test_max_steps_stops_each_split_at_its_share():
    spec = _toy_frames_task()  # every episode is 3 steps long
    full = collect(spec, 20, seed=5, progress=False)
    assert (len(full["train"]), len(full["test"])) == (18, 2)
    # 30 steps: train keeps episodes until they hold 27 (9 episodes), test until 3 (1 episode)
    capped = collect(spec, 20, seed=5, progress=False, max_steps=30)
    assert (len(capped["train"]), len(capped["test"])) == (9, 1)
    # the same seeds in the same order: the capped train split is the start of the full one
    assert capped["train"].to_dict() == full["train"].select(range(9)).to_dict()
    # the episode that crosses the budget is kept; each split keeps at least one episode
    assert [len(collect(spec, 20, seed=5, progress=False, max_steps=n)[s]) for n in (10, 1) for s in ("train", "test")] \
        == [3, 1, 1, 1]
    # a budget larger than the episodes hold changes nothing
    assert collect(spec, 20, seed=5, progress=False, max_steps=10**6)["test"].to_dict() == full["test"].to_dict()
    with pytest.raises(ValueError, match="max_steps must be >= 1, got 0"):
        collect(spec, 20, progress=False, max_steps=0)


def test_bad_observation_names_field_and_task():
    class Wrong(_Frames):
        def _obs(self):
            return {"image_observations": np.zeros((84, 84, 3), np.uint8)}

    spec = TaskSpec(
        "toy-wrong",
        "toy",
        (FieldSpec("image_observations", "image", (84, 84, 4), "uint8"),),
        FieldSpec("discrete_actions", "discrete", (), "int64", n=3),
        make_env=Wrong,
        expert=lambda env: lambda obs: 0,
    )
    with pytest.raises(ValueError, match=r"toy-wrong.*image_observations.*\(84, 84, 4\).*\(84, 84, 3\)"):
        collect(spec, 1, progress=False)


def test_policy_that_gives_up_drops_episodes(registry):
    spec = registry.task("babyai-go-to-red-ball")
    calls = []

    def flaky(env):
        calls.append(1)
        bot = spec.expert(env)
        return (lambda obs: None) if len(calls) == 1 else bot

    with pytest.warns(UserWarning, match="gave up"):
        data = collect(spec, 1, policy_factory=flaky, progress=False)
    assert len(data["train"]) == 1 and len(calls) == 2
    with pytest.raises(RuntimeError, match="gave up on 2 episodes"):
        with pytest.warns(UserWarning):
            collect(spec, 1, policy_factory=lambda env: lambda obs: None, progress=False, max_failures=1)


@pytest.fixture
def cli_registry(monkeypatch, registry):
    monkeypatch.setattr(jat_core.plugins, "load_plugins", lambda names=None: registry)


def test_cli_collects_and_reports(cli_registry, tmp_path, capsys):
    code = cli.collect_main(
        [
            "--tasks",
            "babyai-go-to-red-ball",
            "--episodes",
            "2",
            "--out",
            str(tmp_path),
            "--seed",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "babyai-go-to-red-ball: 1 train + 1 test episodes" in out and "expert-normalised" in out
    assert datasets.load_from_disk(str(tmp_path / "babyai-go-to-red-ball"))["test"].num_rows == 1
    # --max-steps 1: one episode per split whatever --episodes asks
    argv = ["--tasks", "babyai-go-to-red-ball", "--episodes", "5", "--max-steps", "1", "--out", str(tmp_path),
            "--no-progress"]
    assert cli.collect_main(argv) == 0
    assert "babyai-go-to-red-ball: 1 train + 1 test episodes" in capsys.readouterr().out
    assert cli.collect_main(argv[:5] + ["0"] + argv[6:]) == 2
    assert "--max-steps: expected a positive number of steps, got 0" in capsys.readouterr().err


def test_cli_unknown_task_suggests(cli_registry, tmp_path, capsys):
    assert (
        cli.collect_main(["--tasks", "babyai-goto-red-ball", "--episodes", "1", "--out", str(tmp_path)]) == 2
    )
    assert "Did you mean: babyai-go-to-red-ball" in capsys.readouterr().err


def test_cli_needs_a_policy_without_expert(cli_registry, tmp_path, capsys):
    assert cli.collect_main(["--tasks", "atari-alien", "--episodes", "1", "--out", str(tmp_path)]) == 2
    assert "no offline expert for atari-alien" in capsys.readouterr().err
    assert cli.collect_main(["--tasks", "oscar", "--episodes", "1", "--out", str(tmp_path)]) == 2
    assert "without an environment" in capsys.readouterr().err
    assert (
        cli.collect_main(
            [
                "--tasks",
                "atari-pong",
                "--episodes",
                "1",
                "--out",
                str(tmp_path),
                "--policy",
                "nonexistent_module:f",
            ]
        )
        == 2
    )
    assert "cannot load policy" in capsys.readouterr().err
