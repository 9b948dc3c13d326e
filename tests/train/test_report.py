"""jat-report writes a Markdown report with the score table and the learning curve."""

import json

from jat_train.evaluation.report import main, score_table


def _results():
    return {
        "tasks": {
            "toy-a": {"mean": 0.9, "std": 0.1, "normalized": 0.95, "episodes": 20},
            "toy-b": {"mean": 0.5, "std": 0.2, "normalized": 0.4, "episodes": 20},
        },
        "domains": {"toy": {"iqm": 0.675, "ci_low": 0.4, "ci_high": 0.95, "num_tasks": 2,
                            "task_mean_iqm": 0.7, "task_mean_ci_low": 0.45, "task_mean_ci_high": 0.9}},
        "all": {"iqm": 0.675, "ci_low": 0.4, "ci_high": 0.95, "num_tasks": 2},
    }


def test_score_table_lists_tasks_and_domains():
    table = score_table(_results())
    assert "| toy-a | 20 | 0.900 | 0.100 | 0.950 |" in table
    assert "| toy | 2 | 0.675 [0.400, 0.950] | 0.700 [0.450, 0.900] |" in table
    assert "| **all** | 2 | 0.675 [0.400, 0.950] | n/a |" in table
    assert "expert-normalised IQM [95% CI] | expert-normalised, IQM of task means |" in table


def test_data_normalised_scores_lead_the_tables_and_the_headline():
    from jat_train.evaluation.report import headline

    results = _results()
    for r in results["tasks"].values():
        r.update(data_mean=1.0, data_normalized=r["mean"])
    results["all"].update(data_normalized_iqm=0.8, data_normalized_ci_low=0.7, data_normalized_ci_high=0.9)
    table = score_table(results)
    assert "| task | episodes | mean return | std | data return | data-normalised | expert-normalised |" in table
    assert "| domain | tasks | data-normalised IQM [95% CI] |" in table
    assert "| **all** | 2 | 0.800 [0.700, 0.900] | n/a | 0.675 [0.400, 0.950] | n/a |" in table
    line = headline(results)
    assert line.index("data-normalised IQM: **0.800 [0.700, 0.900]**") < line.index("expert-normalised")


def test_report_written(tmp_path):
    run, ev, out = tmp_path / "run", tmp_path / "eval", tmp_path / "report"
    run.mkdir()
    ev.mkdir()
    with open(run / "log.jsonl", "w") as f:
        for step in range(1, 41):
            f.write(json.dumps({"step": step, "loss": 2.0 / step, "action_loss": 1.5 / step}) + "\n")
    (ev / "results.json").write_text(json.dumps(_results()))
    assert main(["--run", str(run), "--eval", str(ev), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "loss 2.0000 -> 0.0500" in text and "![learning curve](learning_curve.png)" in text
    assert (out / "learning_curve.png").stat().st_size > 5000
    assert json.loads((out / "results.json").read_text()) == _results()


def test_report_says_how_the_model_chose_its_actions(tmp_path):
    run, ev = tmp_path / "run", tmp_path / "eval"
    run.mkdir()
    ev.mkdir()
    (run / "log.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0, "action_loss": 1.0}) + "\n")
    for choice, words in (("sample", "drawn from its softmax (temperature 0.5)"), ("argmax", "the most likely")):
        (ev / "results.json").write_text(json.dumps({**_results(), "actions": {"choice": choice, "temperature": 0.5}}))
        assert main(["--run", str(run), "--eval", str(ev), "--out", str(tmp_path / choice)]) == 0
        assert f"The model's choices among actions: {words}." in (tmp_path / choice / "report.md").read_text()
