"""SIGKILL at seeded random moments of ``jat-collect``, ``jat-eval`` and ``jat-report``, and in the middle of
writing each file they write (``killrun.py``: a process that forks each run and kills it, a few dozen kills a
command): what a later command reads is always the old files or the new complete ones, never a half-written
file; the kills land both before and after the command's writes."""

import json
import os
import subprocess
import sys

import pytest
from toy_cli import EVAL, make_seed

HERE = os.path.dirname(os.path.abspath(__file__))
POINTS = int(os.environ.get("JAT_KILL_POINTS", "16"))  # JAT_KILL_POINTS: more (or fewer) moments

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(os, "fork"), reason="killrun.py forks each run")]


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    root = tmp_path_factory.mktemp("seed")
    make_seed(root)
    return root


def _kill_runs(seed, tmp_path, prog, argv, *, writes, check, seed_number):
    spec = {"prog": prog, "argv": argv, "seed_dir": str(seed), "work": str(tmp_path / "work"), "writes": writes,
            "points": POINTS, "seed": seed_number, "check": check}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "killrun.py"), str(tmp_path / "spec.json")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failures"] == [], result
    assert len(result["outcomes"]) == POINTS + result["files"] and result["files"] > 0
    # the moments spanned the command: some kills left the old files, some came after the new ones were in
    assert {"old", "new"} <= set(result["outcomes"]), result
    print(f"{prog}: {result['duration']:.2f} s a run, {result['files']} files; outcomes {result['outcomes']}")
    return result


def test_killing_jat_collect_anywhere(seed, tmp_path):
    argv = ["--tasks", "toy-reach", "--episodes", "10", "--seed", "1", "--out", "collected", "--no-progress"]
    _kill_runs(seed, tmp_path, "jat-collect", argv, writes="collected", check="collect", seed_number=0)


def test_killing_jat_eval_anywhere(seed, tmp_path):
    argv = [*EVAL, "--seed", "5", "--out", "eval"]
    _kill_runs(seed, tmp_path, "jat-eval", argv, writes="eval", check="eval", seed_number=1)


def test_killing_jat_report_anywhere(seed, tmp_path):
    argv = ["--run", "run", "--eval", "eval", "--out", "report", "--extra", "extra.md"]
    _kill_runs(seed, tmp_path, "jat-report", argv, writes="report", check="report", seed_number=2)
