"""Plots: written, non-empty PNGs of the expected size, and clear errors when there is nothing to plot."""

from __future__ import annotations

import numpy as np
import pytest
from jat_core.specs import FieldSpec, Scores, TaskSpec
from jat_train.evaluation.evaluate import summarize, write_report_files
from jat_train.evaluation.plots import plot_domains, plot_tasks
from PIL import Image


def _results(with_human: bool = True):
    rng = np.random.default_rng(0)
    tasks, returns = [], {}
    for domain, n in (("alpha", 6), ("beta", 4), ("gamma", 1)):
        for k in range(n):
            human = 8.0 if with_human and domain == "alpha" else None
            tasks.append(
                TaskSpec(
                    name=f"{domain}-t{k}",
                    domain=domain,
                    observation=(FieldSpec("continuous_observations", "c", (2,)),),
                    action=FieldSpec("discrete_actions", "d", (), "int64", n=2),
                    scores=Scores(0.0, 10.0, human=human),
                )
            )
            returns[tasks[-1].name] = list(rng.normal(rng.uniform(-2, 40), 2, size=6))  # some far above 300%
    results = summarize(tasks, returns, reps=200)
    results["policy"] = "test"
    return results


def test_plots_are_written(tmp_path):
    results = _results()
    for path in (
        plot_domains(results, str(tmp_path / "d.png")),
        plot_tasks(results, str(tmp_path / "t.png")),
    ):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 500 and im.height > 200
            # not a blank canvas
            assert len(set(np.asarray(im.convert("L")).reshape(-1).tolist())) > 10
    with Image.open(tmp_path / "t.png") as im:
        assert im.height > 11 * 0.22 * 120  # grows with the number of tasks


def test_report_files(tmp_path):
    written = write_report_files(_results(), str(tmp_path / "out"))
    assert [p.split("/")[-1] for p in written] == ["results.json", "domains.png", "tasks.png", "human.png"]
    written = write_report_files(_results(with_human=False), str(tmp_path / "out2"))
    assert [p.split("/")[-1] for p in written] == ["results.json", "domains.png", "tasks.png"]


def test_nothing_to_plot_is_an_error(tmp_path):
    results = {"tasks": {"x": {"mean": 1.0, "normalized": None}}, "domains": {}, "all": {"iqm": None}}
    with pytest.raises(ValueError, match="no expert-normalised aggregate"):
        plot_domains(results, str(tmp_path / "d.png"))
    with pytest.raises(ValueError, match="no task has a 'normalized' score"):
        plot_tasks(results, str(tmp_path / "t.png"))
