"""Evaluation on real BabyAI tasks: the random policy scores near the reference random score, the bot near 1."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("minigrid")

import jat_core  # noqa: E402
from jat_train.evaluation import evaluate as ev  # noqa: E402

TASK = "babyai-go-to-red-ball"


@pytest.fixture(scope="module")
def task():
    return jat_core.load_plugins("babyai").task(TASK)


def test_random_policy_scores_near_the_reference_random_score(task):
    run = ev.run_episodes(task, "random", 100, 4, seed=0, progress=False)
    mean = np.mean(run["returns"])
    # within 3 standard errors of the reference random mean (its std is in the reference table)
    assert abs(mean - task.scores.random) < 3 * task.scores.random_std / np.sqrt(100)
    assert abs(task.scores.normalize(mean)) < 0.15


def test_expert_scores_close_to_one_and_results_are_deterministic(task, tmp_path):
    results = ev.evaluate(
        "expert", [task], episodes=20, num_envs=3, seed=0, out=str(tmp_path), progress=False
    )
    r = results["tasks"][TASK]
    assert r["episodes"] == 20
    assert 0.9 < r["normalized"] < 1.1
    assert (
        results["domains"]["babyai"]["ci_low"] <= r["normalized"] <= results["domains"]["babyai"]["ci_high"]
    )
    again = ev.run_episodes(task, "expert", 20, 5, seed=0, progress=False)
    assert again["returns"] == r["episode_returns"]  # same seed, other batch size: the same episodes
