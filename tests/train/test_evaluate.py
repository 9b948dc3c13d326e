"""Evaluation loop on an inline fake domain plugin: episode counts, determinism, policies, results, files."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import gymnasium as gym
import jat_core
import numpy as np
import pytest
from jat_core.specs import FieldSpec, Scores, TaskSpec
from jat_train.evaluation import evaluate as ev
from jat_train.evaluation.policies import ExpertPolicy, RandomPolicy, make_policy

N_ACTIONS = 3


class GuessEnv(gym.Env):
    """Each step shows a target in 0..2 (one-hot) and a mission string; reward 1 for choosing it.

    Episode length is drawn at reset from the seeded RNG (3..8 steps), so returns vary across episodes and
    depend only on the reset seed and the actions.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Dict(
            {
                "continuous_observations": gym.spaces.Box(0.0, 1.0, (N_ACTIONS,), np.float32),
                "text_observations": gym.spaces.Text(max_length=32),
            }
        )
        self.action_space = gym.spaces.Discrete(N_ACTIONS)

    def _obs(self):
        onehot = np.zeros(N_ACTIONS, np.float32)
        onehot[self.target] = 1.0
        return {"continuous_observations": onehot, "text_observations": f"pick {self.target}"}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.length = int(self.np_random.integers(3, 9))
        self.t = 0
        self.target = int(self.np_random.integers(N_ACTIONS))
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.target)
        self.t += 1
        self.target = int(self.np_random.integers(N_ACTIONS))
        return self._obs(), reward, self.t >= self.length, False, {}

    def render(self):
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[:, :, self.target] = 30 * self.t  # distinct frames (GIF merges equal ones)
        return frame


def guess_expert(env):
    """The expert reads the one-hot target (a fresh one per episode, like the BabyAI bot)."""
    return lambda obs: int(np.argmax(obs["continuous_observations"]))


def fake_task(name="fake-guess", domain="fake", human=None) -> TaskSpec:
    return TaskSpec(
        name=name,
        domain=domain,
        observation=(
            FieldSpec("continuous_observations", "fake-continuous", (N_ACTIONS,), "float32"),
            FieldSpec("text_observations", "fake-text", (), "string"),
        ),
        action=FieldSpec("discrete_actions", "fake-discrete", (), "int64", n=N_ACTIONS),
        make_env=GuessEnv,
        scores=Scores(random=5.5 / 3, expert=5.5, human=human),
        expert=guess_expert,
    )


@jat_core.hookimpl
def _register_codecs(register):
    for name in ("fake-continuous", "fake-text", "fake-discrete"):
        register(name, lambda config, shared: None)


@jat_core.hookimpl
def _register_tasks(register):
    register(fake_task())
    register(fake_task("fake-guess-2", human=4.0))
    register(fake_task("other-guess", domain="other"))


FAKE_PLUGIN = SimpleNamespace(jat_register_codecs=_register_codecs, jat_register_tasks=_register_tasks)


@pytest.fixture(scope="module")
def registry():
    return jat_core.load_plugins(extra={"fake": FAKE_PLUGIN}, entry_points=False)


def test_schedule_assigns_every_episode_once():
    schedule = ev.episode_schedule(10, 4)
    assert schedule == [[0, 4, 8], [1, 5, 9], [2, 6], [3, 7]]
    assert sorted(j for s in schedule for j in s) == list(range(10))
    with pytest.raises(ValueError, match="positive"):
        ev.episode_schedule(0, 2)


@pytest.mark.parametrize("num_envs", [1, 3, 4, 7])
def test_exact_episode_count_and_independent_of_num_envs(registry, num_envs):
    task = registry.task("fake-guess")
    reference = ev.run_episodes(task, "random", 7, 1, seed=3, progress=False)
    run = ev.run_episodes(task, "random", 7, num_envs, seed=3, progress=False)
    assert len(run["returns"]) == len(run["lengths"]) == 7
    assert all(3 <= n <= 8 for n in run["lengths"])
    # Episode j is seeded seed + j whatever env runs it: results do not depend on the batch size.
    assert run == reference


def test_deterministic_for_a_seed_and_different_across_seeds(registry):
    task = registry.task("fake-guess")
    a = ev.run_episodes(task, "random", 6, 2, seed=0, progress=False)
    b = ev.run_episodes(task, "random", 6, 2, seed=0, progress=False)
    c = ev.run_episodes(task, "random", 6, 2, seed=100, progress=False)
    assert a == b
    assert a != c


def test_async_vector_env_gives_the_same_episodes(registry):
    task = registry.task("fake-guess")
    sync = ev.run_episodes(task, "random", 5, 2, seed=1, progress=False)
    async_ = ev.run_episodes(task, "random", 5, 2, seed=1, vector="async", progress=False)
    assert sync == async_


def test_expert_scores_its_episode_length_and_random_is_worse(registry):
    task = registry.task("fake-guess")
    expert = ev.run_episodes(task, "expert", 8, 3, seed=0, progress=False)
    assert expert["returns"] == [float(n) for n in expert["lengths"]]
    rand = ev.run_episodes(task, "random", 8, 3, seed=0, progress=False)
    assert np.mean(rand["returns"]) < np.mean(expert["returns"])


def test_rewards_passed_to_the_policy_are_the_previous_step_rewards(registry):
    task = registry.task("fake-guess")
    seen = []

    class Recorder(RandomPolicy):
        def act(self, observations, rewards):
            seen.append((np.array(rewards), np.array(observations["continuous_observations"])))
            return np.argmax(observations["continuous_observations"], axis=1)

    run = ev.run_episodes(task, lambda t, envs: Recorder(envs.single_action_space), 2, 1, progress=False)
    rewards = [r[0] for r, _ in seen]
    # First step of each episode gets 0, then the expert-like recorder earns 1 per step.
    assert rewards[0] == 0.0 and rewards[1] == 1.0
    assert rewards[run["lengths"][0]] == 0.0  # first step of the second episode
    assert len(seen) == sum(run["lengths"])


def test_max_steps_truncates_episodes(registry):
    task = registry.task("fake-guess")
    run = ev.run_episodes(task, "expert", 4, 2, seed=0, max_steps=2, progress=False)
    assert run["lengths"] == [2, 2, 2, 2]


def test_policy_errors(registry):
    task = registry.task("fake-guess")
    envs = ev.make_vector_env(task, 2, vector="async")
    try:
        with pytest.raises(ValueError, match="SyncVectorEnv"):
            ExpertPolicy(task, envs)
    finally:
        envs.close()
    no_expert = TaskSpec(
        name="x", domain="d", observation=task.observation, action=task.action, make_env=GuessEnv
    )
    envs = ev.make_vector_env(no_expert, 1)
    try:
        with pytest.raises(ValueError, match="no expert"):
            make_policy("expert", no_expert, envs)
        with pytest.raises(ValueError, match="policy must be"):
            make_policy("greedy", no_expert, envs)
    finally:
        envs.close()
    text_only = TaskSpec(name="text", domain="d", observation=task.observation)
    with pytest.raises(ValueError, match="no environment"):
        ev.make_vector_env(text_only, 1)


def test_evaluate_writes_results_in_the_schema(registry, tmp_path):
    tasks = registry.select("fake,other")
    results = ev.evaluate("expert", tasks, episodes=5, num_envs=2, seed=0, out=str(tmp_path), progress=False)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert set(on_disk["tasks"]) == {"fake-guess", "fake-guess-2", "other-guess"}
    for r in on_disk["tasks"].values():
        assert {"mean", "std", "normalized", "episodes"} <= set(r)
        assert r["episodes"] == 5 and len(r["episode_returns"]) == 5
        assert r["mean"] == pytest.approx(np.mean(r["episode_returns"]))
        assert r["std"] == pytest.approx(np.std(r["episode_returns"]))
        assert r["normalized"] == pytest.approx((r["mean"] - 5.5 / 3) / (5.5 - 5.5 / 3))
    # The human-normalised score is there only where the spec has a human score.
    assert "human_normalized" not in on_disk["tasks"]["fake-guess"]
    r2 = on_disk["tasks"]["fake-guess-2"]
    assert r2["human_normalized"] == pytest.approx((r2["mean"] - 5.5 / 3) / (4.0 - 5.5 / 3))
    assert set(on_disk["domains"]) == {"fake", "other"}
    for agg in [*on_disk["domains"].values(), on_disk["all"]]:
        assert agg["ci_low"] <= agg["iqm"] <= agg["ci_high"]
    assert on_disk["domains"]["fake"]["num_tasks"] == 2
    assert "human_iqm" in on_disk["domains"]["fake"] and "human_iqm" not in on_disk["domains"]["other"]
    assert on_disk["policy"] == "expert" and on_disk["seed"] == 0
    for png in ("domains.png", "tasks.png", "human.png"):
        assert (tmp_path / png).stat().st_size > 5000


def test_video_records_the_first_episodes_as_gifs(registry, tmp_path):
    from PIL import Image

    task = registry.task("fake-guess")
    results = ev.evaluate(
        "random", [task], episodes=3, num_envs=2, out=str(tmp_path), video=True, progress=False
    )
    gifs = sorted(os.listdir(tmp_path / "videos" / "fake-guess"))
    assert gifs == ["episode-0.gif", "episode-1.gif"]
    with Image.open(tmp_path / "videos" / "fake-guess" / "episode-0.gif") as im:
        # reset frame + one frame per step
        assert im.n_frames == results["tasks"]["fake-guess"]["episode_lengths"][0] + 1
    with pytest.raises(ValueError, match="out"):
        ev.evaluate("random", [task], episodes=1, video=True, progress=False)


def test_model_policy_drives_the_agent(registry):
    """ModelPolicy against the agent interface (reset / act / reset_env), with a scripted stand-in agent."""
    task = registry.task("fake-guess")
    calls = []

    class Agent:
        def reset(self, num_envs):
            calls.append(("reset", num_envs))

        def reset_env(self, i):
            calls.append(("reset_env", i))

        def act(self, observations, rewards):
            import torch

            assert isinstance(observations["text_observations"], tuple)
            return torch.as_tensor(np.argmax(observations["continuous_observations"], axis=1))

    class Model:
        def agent(self, task, **kwargs):
            calls.append(("agent", task.name, kwargs))
            return Agent()

    run = ev.run_episodes(task, Model(), 3, 2, progress=False, agent_kwargs={"tokenizer": "tok"})
    assert run["returns"] == [float(n) for n in run["lengths"]]
    assert calls[0] == ("agent", "fake-guess", {"tokenizer": "tok"}) and calls[1] == ("reset", 2)
    # 3 episodes over 2 envs: env 0 is reset after episode 0, env 1 after episode 1 (and after its spare ones).
    resets = [c[1] for c in calls if c[0] == "reset_env"]
    assert 0 in resets and 1 in resets and set(resets) == {0, 1}


def test_expert_that_gives_up_is_replaced_by_random_actions(registry):
    task = registry.task("fake-guess")
    quitter = TaskSpec(
        name="quitter",
        domain="fake",
        observation=task.observation,
        action=task.action,
        make_env=GuessEnv,
        scores=task.scores,
        expert=lambda env: lambda obs: None,
    )
    run = ev.run_episodes(quitter, "expert", 3, 2, seed=0, progress=False)
    assert run == ev.run_episodes(task, "random", 3, 2, seed=0, progress=False)


def test_task_workers_give_the_same_episodes_as_a_loop(registry):
    """Whole tasks in forked worker processes: the same returns per episode, the same aggregates, in the tasks'
    order, for the random policy (its draws seeded by the episode seeds) and the expert."""
    tasks = [registry.task(n) for n in ("fake-guess", "fake-guess-2", "other-guess")]
    for policy in ("random", "expert"):
        alone = ev.evaluate(policy, tasks, episodes=6, num_envs=2, seed=4, progress=False, reps=50)
        pooled = ev.evaluate(policy, tasks, episodes=6, num_envs=2, seed=4, progress=False, reps=50, workers=2)
        assert list(pooled["tasks"]) == [t.name for t in tasks]
        for t in tasks:
            assert pooled["tasks"][t.name]["episode_returns"] == alone["tasks"][t.name]["episode_returns"]
        assert pooled["domains"] == alone["domains"] and pooled["all"] == alone["all"]
    assert len(set(alone["tasks"]["fake-guess"]["episode_returns"])) > 1  # the episodes differ from each other


def test_default_workers_one_per_core_but_one_for_a_gpu_model():
    import torch

    assert ev.default_workers("random") == (os.cpu_count() or 1)
    assert ev.default_workers(torch.nn.Linear(2, 2)) == (os.cpu_count() or 1)
    on_gpu = SimpleNamespace(device=torch.device("cuda", 0))  # a stand-in: its device is all that is read
    assert ev.default_workers(on_gpu) == 1
