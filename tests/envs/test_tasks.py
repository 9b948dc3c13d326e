"""The task lists: every published task with its exact name, fields, scores, weights and hub config."""

import csv
from importlib import resources

import pytest
from jat_core.specs import TaskSpec
from jat_envs.scores import load_scores, scores_for

COUNTS = {"atari": 57, "babyai": 39, "metaworld": 50, "mujoco": 11, "text": 6}
TEXT_TASKS = ["oscar", "wikipedia", "conceptual-captions", "ok-vqa"]
#: text tasks whose data jat-collect makes on this machine (no hub configuration)
LOCAL_TEXT_TASKS = ["text-local", "captions-shapes"]


def _csv_tasks() -> list[str]:
    text = resources.files("jat_envs").joinpath("data", "reference_scores.csv").read_text()
    return [row["task"] for row in csv.DictReader(text.splitlines())]


def test_counts_and_names(registry):
    domains = registry.domains()
    assert {d: len(v) for d, v in domains.items()} == COUNTS
    assert len(registry.tasks) == 163
    # the 157 RL task names are exactly those of the reference score table, the text tasks the 4 configs and
    # the 2 local tasks
    assert sorted(n for n, t in registry.tasks.items() if t.is_rl) == sorted(_csv_tasks())
    assert sorted(domains["text"]) == sorted(TEXT_TASKS + LOCAL_TEXT_TASKS)
    for domain, names in domains.items():
        if domain != "text":
            assert all(n.startswith(f"{domain}-") for n in names)


def test_reference_names_spot_checks(registry):
    for name in [
        "babyai-move-two-across-s8n9",
        "babyai-put-next",
        "metaworld-peg-insert-side",
        "mujoco-doublependulum",
        "atari-montezumarevenge",
        "atari-kungfumaster",
    ]:
        assert isinstance(registry.task(name), TaskSpec)
    assert registry.task("babyai-put-next").metadata["env_id"] == "BabyAI-PutNextS7N4-v0"
    assert registry.task("metaworld-peg-insert-side").metadata["env_name"] == "peg-insert-side-v3"
    assert registry.task("mujoco-pusher").metadata["env_id"] == "Pusher-v5"  # Pusher-v4 needs mujoco<3
    assert registry.task("mujoco-ant").metadata["env_id"] == "Ant-v4"


def test_unknown_task_suggests_close_names(registry):
    with pytest.raises(KeyError, match="Did you mean: babyai-go-to-red-ball"):
        registry.task("babyai-goto-red-ball")
    with pytest.raises(KeyError, match="metaworld-pick-place"):
        registry.task("metaworld-pickplace")


def test_fields(registry):
    pong = registry.task("atari-pong")
    (img,) = pong.observation
    assert (img.name, img.codec, img.shape, img.dtype) == (
        "image_observations",
        "image",
        (84, 84, 4),
        "uint8",
    )
    assert (pong.action.name, pong.action.codec, pong.action.n) == ("discrete_actions", "discrete", 6)
    assert max(registry.task(n).action.n for n in registry.domains()["atari"]) == 18
    assert pong.context_steps == 32

    go = registry.task("babyai-go-to")
    grid, mission = go.observation  # order matters: 148 grid ints, then the 64 mission tokens
    assert (grid.name, grid.codec, grid.shape, grid.dtype) == (
        "discrete_observations",
        "discrete",
        (148,),
        "int64",
    )
    assert (mission.name, mission.codec, mission.dtype, mission.max_tokens) == (
        "text_observations",
        "discrete",
        "string",
        64,
    )
    assert grid.shape[0] + mission.max_tokens == 212
    assert (go.action.name, go.action.n) == ("discrete_actions", 7)

    reach = registry.task("metaworld-reach")
    assert reach.observation[0].shape == (39,) and reach.observation[0].dtype == "float32"
    assert (reach.action.name, reach.action.shape, reach.action.low, reach.action.high) == (
        "continuous_actions",
        (4,),
        -1.0,
        1.0,
    )
    assert reach.max_episode_steps == 100

    sizes = {
        "ant": (27, 8),
        "doublependulum": (11, 1),
        "halfcheetah": (17, 6),
        "hopper": (11, 3),
        "humanoid": (376, 17),
        "pendulum": (4, 1),
        "pusher": (23, 7),
        "reacher": (11, 2),
        "standup": (376, 17),
        "swimmer": (8, 2),
        "walker": (17, 6),
    }
    for name, (obs, act) in sizes.items():
        spec = registry.task(f"mujoco-{name}")
        assert (spec.observation[0].shape, spec.action.shape) == ((obs,), (act,)), name
        assert spec.observation[0].size + 1 <= 377  # fits the continuous encoder with the reward

    cc = registry.task("conceptual-captions")
    assert [f.name for f in cc.observation] == ["images", "text"]
    assert [f.codec for f in cc.observation] == ["vit", "text"]
    assert [f.name for f in registry.task("oscar").observation] == ["text"]
    for name in TEXT_TASKS + LOCAL_TEXT_TASKS:
        spec = registry.task(name)
        assert spec.action is None and spec.make_env is None and not spec.is_rl
        assert (spec.samples is not None) == (name in LOCAL_TEXT_TASKS), name
    assert registry.task("captions-shapes").observation == cc.observation  # the conceptual-captions schema
    assert registry.task("text-local").observation == registry.task("oscar").observation


def test_weights(registry):
    for name, spec in registry.tasks.items():
        expected_sample = 10.0 if name in ("oscar", "wikipedia", "conceptual-captions") else 1.0
        assert spec.sample_weight == expected_sample, name
        if spec.domain == "metaworld":
            assert spec.loss_weight == 50.0
        elif spec.domain == "mujoco":
            expected = {"mujoco-pendulum": 50.0, "mujoco-doublependulum": 20.0}.get(name, 10.0)
            assert spec.loss_weight == expected, name
        else:
            assert spec.loss_weight == 1.0, name


def test_dataset_and_scores(registry):
    for name, spec in registry.tasks.items():
        if name in LOCAL_TEXT_TASKS:  # made locally: no hub data set, DIR/<task>/ by the task name
            assert spec.dataset is None and spec.scores is None
            continue
        assert (spec.dataset.repo, spec.dataset.config) == ("jat-project/jat-dataset", name)
        if spec.is_rl and name != "atari-venture":
            assert spec.scores is not None and spec.scores.expert != spec.scores.random, name
    pong = registry.task("atari-pong").scores
    assert (pong.random, pong.human) == (-20.7, 14.6)
    assert pong.expert == pytest.approx(21.0, abs=0.5)
    assert registry.task("atari-pong").dataset.local_path("/data") == "/data/atari-pong"
    babyai = scores_for("babyai-go-to-red-ball")
    assert babyai.random == pytest.approx(0.166546) and babyai.expert == pytest.approx(0.925129)
    assert babyai.human is None
    assert scores_for("mujoco-reacher").expert == pytest.approx(-5.678414)
    # Venture's expert scored like a random policy: no normalisation possible
    assert registry.task("atari-venture").scores is None and load_scores()["atari-venture"] is None
    assert all(registry.task(n).scores is None for n in TEXT_TASKS)
    with pytest.raises(KeyError, match="no reference scores"):
        scores_for("atari-nonexistent")


def test_experts(registry):
    """Every BabyAI and Meta-World task has an offline expert; MuJoCo and Atari have them for some tasks; the text
    tasks (no env) have none."""
    with_expert = {n for n, t in registry.tasks.items() if t.expert is not None}
    assert set(registry.domains()["babyai"]) | set(registry.domains()["metaworld"]) <= with_expert
    assert {registry.task(n).domain for n in with_expert} <= {"babyai", "metaworld", "mujoco", "atari"}
    assert not with_expert & set(TEXT_TASKS + LOCAL_TEXT_TASKS)


def test_plugins_import_no_heavy_dependency():
    import subprocess
    import sys

    code = (
        "import sys; import jat_envs.atari.plugin, jat_envs.babyai.plugin, jat_envs.metaworld.plugin, "
        "jat_envs.mujoco.plugin, jat_envs.text.plugin; "
        "print(sorted(m for m in ('gymnasium', 'ale_py', 'minigrid', 'metaworld', 'mujoco', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
