"""Bad input to ``jat-report``: missing or malformed ``log.jsonl`` / ``results.json``, an output that is a file, a
missing ``--extra``; each one line on stderr naming the file, exit status 2, no traceback, and the inputs and an
earlier report byte-identical afterwards."""

import json
import os
import subprocess
import sys

import pytest
from jat_train.evaluation.report import main
from trainkit import assert_one_line_error, snapshot

RESULTS = {
    "tasks": {"toy-a": {"mean": 0.9, "std": 0.1, "normalized": 0.95, "episodes": 20}},
    "domains": {"toy": {"iqm": 0.9, "ci_low": 0.8, "ci_high": 0.95}},
    "all": {"iqm": 0.9, "ci_low": 0.8, "ci_high": 0.95},
}
LOG = "".join(json.dumps({"step": s, "loss": 2.0 / s, "action_loss": 1.0 / s}) + "\n" for s in range(1, 6))


@pytest.fixture
def dirs(tmp_path):
    run, ev, out = tmp_path / "run", tmp_path / "eval", tmp_path / "report"
    run.mkdir()
    ev.mkdir()
    (run / "log.jsonl").write_text(LOG)
    (ev / "results.json").write_text(json.dumps(RESULTS))
    assert main(["--run", str(run), "--eval", str(ev), "--out", str(out)]) == 0  # an earlier, good report
    return tmp_path


def _set(path, text):
    def damage(root):
        if text is None:
            os.remove(root / path)
        else:
            (root / path).write_text(text)

    return damage


CASES = [
    (_set("run/log.jsonl", None), ["--run", "no training log", "log.jsonl"]),
    (_set("run/log.jsonl", ""), ["log.jsonl", "holds no record"]),
    (_set("run/log.jsonl", LOG + '{"step": 6, "loss":'), ["log.jsonl", "line 6", "not valid JSON"]),
    (_set("run/log.jsonl", '{"step": 1}\n'), ["log.jsonl", "line 1", "'loss'"]),
    (_set("run/log.jsonl", '[1, 2]\n'), ["log.jsonl", "line 1", "JSON object"]),
    (_set("run/log.jsonl", '{"step": "one", "loss": 1}\n'), ["log.jsonl", "numeric 'step'"]),
    (_set("eval/results.json", None), ["--eval", "no results file", "results.json"]),
    (_set("eval/results.json", "{"), ["results.json", "not valid JSON"]),
    (_set("eval/results.json", "[]"), ["results.json", "'tasks', 'domains' and 'all'"]),
    (_set("eval/results.json", json.dumps({**RESULTS, "all": None})), ["results.json", "'all'"]),
    (_set("eval/results.json", json.dumps({**RESULTS, "tasks": {"toy-a": {"mean": 1}}})),
     ["results.json", "malformed results", "KeyError"]),
    (_set("eval/results.json", json.dumps({**RESULTS, "tasks": {"toy-a": {**RESULTS["tasks"]["toy-a"], "mean": "x"}}})),
     ["results.json", "malformed results"]),
]


@pytest.mark.parametrize("damage, needles", CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_inputs_leave_everything_as_it_was(dirs, capsys, damage, needles):
    damage(dirs)
    before = snapshot(dirs)
    assert main(["--run", str(dirs / "run"), "--eval", str(dirs / "eval"), "--out", str(dirs / "report")]) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-report", *needles)
    assert snapshot(dirs) == before


@pytest.mark.parametrize(
    "out, extra, needles",
    [
        ("run/log.jsonl", [], ["--out", "is a file"]),
        ("run/log.jsonl/x", [], ["--out", "below the file"]),
        ("report", ["--extra", "missing.md"], ["--extra", "missing.md"]),
        ("report", ["--extra", "run"], ["--extra", "'run'"]),
    ],
)
def test_bad_out_and_extra(dirs, capsys, monkeypatch, out, extra, needles):
    monkeypatch.chdir(dirs)
    before = snapshot(dirs)
    assert main(["--run", "run", "--eval", "eval", "--out", out, *extra]) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-report", *needles)
    assert snapshot(dirs) == before


def test_results_without_normalised_scores_still_report(dirs):
    results = {**RESULTS, "domains": {"toy": {"iqm": None, "ci_low": None, "ci_high": None}},
               "all": {"iqm": None, "ci_low": None, "ci_high": None}}
    (dirs / "eval" / "results.json").write_text(json.dumps(results))
    assert main(["--run", str(dirs / "run"), "--eval", str(dirs / "eval"), "--out", str(dirs / "report")]) == 0
    assert "IQM (published JAT constants): **n/a**" in (dirs / "report" / "report.md").read_text()
    assert not [p for p in os.listdir(dirs / "report") if p.startswith(".tmp-")]


def test_console_script_exits_2_without_traceback(tmp_path):
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "jat-report"), "--run", "r", "--eval", "e",
                          "--out", "o"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert_one_line_error(out.stderr, "jat-report", "--run", "log.jsonl")
    assert os.listdir(tmp_path) == []
