"""Evaluation of a (tiny, untrained) JatModel through its batched agent on a real BabyAI task."""

from __future__ import annotations

import pytest

pytest.importorskip("jat_core.agent")
pytest.importorskip("minigrid")

import jat_core  # noqa: E402
import torch  # noqa: E402
from jat_core.config import JatConfig  # noqa: E402
from jat_core.model import JatModel  # noqa: E402
from jat_core.tokenizer import build_tokenizer  # noqa: E402
from jat_train.evaluation import evaluate as ev  # noqa: E402

TASK = "babyai-go-to-red-ball"


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    registry = jat_core.load_plugins("babyai")
    tokenizer = build_tokenizer(["go to the red ball", "pick up the blue key", "open the door"] * 5, 300)
    config = JatConfig.from_preset(
        "tiny", vocab_size=len(tokenizer), num_layers=1, hidden_size=64, num_heads=2
    )
    model = JatModel(config, registry).eval()
    return registry.task(TASK), model, tokenizer


def test_model_evaluation_counts_episodes_and_is_deterministic(setup, tmp_path):
    task, model, tokenizer = setup
    kwargs = dict(max_steps=8, progress=False, agent_kwargs={"tokenizer": tokenizer})
    results = ev.evaluate(model, [task], episodes=5, num_envs=2, seed=0, out=str(tmp_path), **kwargs)
    r = results["tasks"][TASK]
    assert r["episodes"] == 5 and len(r["episode_returns"]) == 5
    assert all(1 <= n <= 8 for n in r["episode_lengths"])
    assert (tmp_path / "results.json").exists() and (tmp_path / "tasks.png").exists()
    again = ev.evaluate(model, [task], episodes=5, num_envs=2, seed=0, **kwargs)
    assert again["tasks"][TASK]["episode_returns"] == r["episode_returns"]
    assert again["tasks"][TASK]["episode_lengths"] == r["episode_lengths"]


class ActionLog:
    """Wraps a BatchPolicy and records each episode's actions (env i's k-th episode is schedule[i][k])."""

    def __init__(self, inner, schedule):
        self.inner, self.schedule, self.episodes = inner, schedule, {}

    def reset(self, num_envs, seeds=None):
        self.position = [0] * num_envs
        self.inner.reset(num_envs, seeds)

    def reset_env(self, i, seed=None):
        self.position[i] += 1
        self.inner.reset_env(i, seed)

    def act(self, observations, rewards):
        actions = self.inner.act(observations, rewards)
        for i, a in enumerate(actions):
            if self.position[i] < len(self.schedule[i]):
                self.episodes.setdefault(self.schedule[i][self.position[i]], []).append(int(a))
        return actions


def test_agent_plays_the_same_episodes_whatever_the_batch_size(setup):
    """One context per env: with 1 or 3 envs, every episode gets the same (argmax) actions."""
    from jat_train.evaluation.policies import ModelPolicy

    task, model, tokenizer = setup
    logs = {}
    for k in (1, 3):
        log = None

        def factory(task, envs, k=k):
            nonlocal log
            inner = ModelPolicy(model, task, envs.single_action_space, tokenizer=tokenizer)
            log = ActionLog(inner, ev.episode_schedule(4, k))
            return log

        ev.run_episodes(task, factory, 4, k, seed=1, max_steps=6, progress=False)
        logs[k] = log.episodes
    assert sorted(logs[1]) == [0, 1, 2, 3]
    assert logs[1] == logs[3]
    assert len({a for ep in logs[1].values() for a in ep}) > 1  # the untrained model does not play one action


def test_task_workers_give_the_same_scores_as_one_process(setup):
    """``workers`` with a real model (forked with its weights; the untrained model's episodes all run to the step
    cap here, so this checks the plumbing: the same episodes and aggregates, in the tasks' order; that the
    episodes themselves match is shown with varied returns in test_evaluate.py)."""
    task, model, tokenizer = setup
    registry = jat_core.load_plugins("babyai")
    tasks = [task, registry.task("babyai-go-to-obj"), registry.task("babyai-open-door")]
    kwargs = dict(max_steps=6, progress=False, agent_kwargs={"tokenizer": tokenizer, "seed": 3})
    alone = ev.evaluate(model, tasks, episodes=4, num_envs=2, seed=10, **kwargs)
    pooled = ev.evaluate(model, tasks, episodes=4, num_envs=2, seed=10, workers=2, **kwargs)
    assert list(pooled["tasks"]) == [t.name for t in tasks]
    for t in tasks:
        assert pooled["tasks"][t.name]["episode_returns"] == alone["tasks"][t.name]["episode_returns"]
        assert pooled["tasks"][t.name]["episode_lengths"] == alone["tasks"][t.name]["episode_lengths"]
    assert pooled["all"] == alone["all"]
