"""Data-normalised scores: the model's return against the return of the data it was trained on."""

import dataclasses
import json

import numpy as np
import pytest
from jat_core.specs import Scores
from jat_train.evaluation.datascore import add_data_scores, data_normalize, data_return
from jat_train.evaluation.evaluate import summarize
from jat_train.evaluation.report import write_report
from trainkit import toy_task, write_task


def test_data_return_is_the_mean_held_out_episode_return(tmp_path):
    """The test split's episodes are played without jat-collect's --action-noise: their return is the one of the
    policy whose actions were recorded. Without test episodes, the training split's."""
    task = toy_task()
    write_task(str(tmp_path), task, [3, 5], test_lengths=(3, 5))  # rewards 0..n-1 plus the episode index i
    assert data_return(task, str(tmp_path)) == pytest.approx(np.mean([0 + 1 + 2, 5 * 1 + 10]))
    write_task(str(tmp_path), task, [3, 5], test_lengths=(4,))
    assert data_return(task, str(tmp_path)) == pytest.approx(0 + 1 + 2 + 3)
    assert data_return(toy_task("toy-missing"), str(tmp_path)) is None


def test_data_return_falls_back_to_the_training_split(tmp_path):
    from datasets import load_from_disk
    from jat_train.collection.collect import write_data

    task = toy_task()
    data = load_from_disk(write_task(str(tmp_path / "full"), task, [3, 5]))
    data["test"] = data["test"].select([])  # as jat-collect --episodes 1 writes it: an empty, typed test split
    write_data(task, data, str(tmp_path / "one"))
    assert data_return(task, str(tmp_path / "one")) == pytest.approx(np.mean([0 + 1 + 2, 5 * 1 + 10]))


def test_data_normalize():
    assert data_normalize(6.0, 10.0, 2.0) == pytest.approx(0.5)
    assert data_normalize(6.0, 2.0, 2.0) is None and data_normalize(6.0, None, 0.0) is None


def test_results_and_report_show_both_scores(tmp_path):
    task = dataclasses.replace(toy_task(), scores=Scores(random=0.0, expert=40.0))
    write_task(str(tmp_path / "data"), task, [3, 5], test_lengths=(3, 5))  # data return 9
    results = summarize([task], {task.name: [4.5, 4.5]}, reps=50)
    add_data_scores(results, [task], str(tmp_path / "data"))
    entry = results["tasks"][task.name]
    assert entry["data_mean"] == pytest.approx(9.0) and entry["data_normalized"] == pytest.approx(0.5)
    assert entry["normalized"] == pytest.approx(4.5 / 40)
    assert results["all"]["data_normalized_iqm"] == pytest.approx(0.5)
    # per episode (the paper's IQM over episodes x tasks) and over per-task means, both with intervals
    assert results["all"]["data_normalized_task_mean_iqm"] == pytest.approx(0.5)
    assert results["all"]["data_normalized_ci_low"] == pytest.approx(0.5)
    assert results["domains"][task.domain]["data_normalized_ci_high"] == pytest.approx(0.5)
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "results.json").write_text(json.dumps(results))
    run = tmp_path / "run"
    run.mkdir()
    log = [{"step": s, "loss": 1.0 / s, "action_loss": 1.0 / s, "task": task.name} for s in range(1, 30)]
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in log))
    report = write_report(run, tmp_path / "eval", tmp_path / "report").read_text()
    assert "data-normalised" in report and "0.500" in report and "task_curves.png" in report
    assert (tmp_path / "report" / "task_curves.png").stat().st_size > 0
