"""``make generalist``, reduced for CI: the quick recipe (a handful of tasks of every domain, a few steps) through
the real ``jat-generalist`` command: collection into the cache, training, evaluation of every task, the report;
a second run reuses the cache; and the same command on a local replica of the published data set (``--data hub:DIR``).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
QUICK = ROOT / "examples" / "generalist" / "quick.json"


def _generalist(*args: str, env=None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("jat-generalist")
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.slow
def test_quick_recipe_end_to_end_then_from_the_cache(tmp_path):
    """``make generalist`` itself (its set-up taken as done: this venv), with the quick recipe."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    venv = Path(sys.executable).parents[1]
    run = subprocess.run(["make", "-C", str(ROOT), "-o", "setup", "generalist", f"VENV={venv}",
                          f"GENERALIST_RECIPE={QUICK}", f"GENERALIST_OUT={tmp_path / 'run'}",
                          f"GENERALIST_CACHE={tmp_path / 'cache'}"], capture_output=True, text=True, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Wall time of `make generalist`" in (tmp_path / "run" / "report.md").read_text()
    recipe = json.loads(QUICK.read_text())
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    env_tasks = set(results["tasks"])
    assert {t["domain"] for t in results["tasks"].values()} == {"atari", "mujoco", "metaworld", "babyai"}
    assert len(env_tasks) == 6
    assert set(results["text_tasks"]) == set(recipe["select"]["text"])
    for domain in ("atari", "mujoco", "metaworld", "babyai", "all"):
        agg = results["all"] if domain == "all" else results["domains"][domain]
        for prefix in ("", "data_normalized_"):
            assert agg[f"{prefix}iqm"] is not None and agg[f"{prefix}task_mean_iqm"] is not None
            assert agg[f"{prefix}ci_low"] <= agg[f"{prefix}iqm"] <= agg[f"{prefix}ci_high"]
    report = (tmp_path / "run" / "report.md").read_text()
    for needle in ("data-normalised IQM [95% CI]", "expert-normalised, IQM of task means", "## The run",
                   "| collect |", "| train |", "| evaluate |", "peak memory", "domain_curves.png",
                   "Where the expert-normalising constants come from"):
        assert needle in report, needle
    assert (tmp_path / "run" / "domain_curves.png").stat().st_size > 5000
    assert all(os.path.islink(tmp_path / "run" / "data" / t) for t in env_tasks)
    # a second run into another folder collects nothing: every task's data come from the cache
    shutil.rmtree(tmp_path / "run")
    again = _generalist("--recipe", str(QUICK), "--out", str(tmp_path / "again"), "--cache", str(tmp_path / "cache"),
                        "--max-steps", "5", env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "8 of 8 tasks' data in the cache" in again.stdout and "jat-collect" not in again.stdout


@pytest.mark.slow
def test_hub_data_skips_collection(tmp_path, monkeypatch):
    """``--data hub:DIR`` trains on a local copy of the published data set's layout and evaluates without data
    normalisation (there are no local expert episodes)."""
    sys.path.insert(0, str(ROOT / "tests" / "train"))
    from hubkit import write_replica
    from jat_core.plugins import load_plugins
    from test_collect import REFERENCE_SCHEMA

    registry = load_plugins()
    tasks = ["babyai-go-to", "metaworld-reach"]
    write_replica(str(tmp_path / "hub"), [registry.task(t) for t in tasks], REFERENCE_SCHEMA, train=(6, 5, 7, 4),
                  test=(3,))
    recipe = json.loads(QUICK.read_text())
    recipe["eval"] = {"episodes": 1, "num_envs": 1, "samples": 2}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf-cache")}
    run = _generalist("--recipe", str(tmp_path / "recipe.json"), "--out", str(tmp_path / "run"),
                      "--tasks", ",".join(tasks), "--data", f"hub:{tmp_path / 'hub'}", "--max-steps", "4", env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "jat-collect" not in run.stdout and not (tmp_path / "run" / "data").exists()
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    assert set(results["tasks"]) == set(tasks)
    assert all("data_normalized" not in r for r in results["tasks"].values())


def test_bad_data_option_is_one_line(tmp_path):
    run = _generalist("--recipe", str(QUICK), "--out", str(tmp_path / "run"), "--data", "somewhere")
    assert run.returncode == 2
    assert "--data: expected 'local', 'hub', 'hub:REPO' or 'hub:DIR', got 'somewhere'" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_folder_another_live_run_writes_is_refused_not_emptied(tmp_path):
    """``--fresh`` empties OUT only once this run holds it: a live run's folder is refused, naming its pid."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("the other run's file")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from jat_train.run_lock import run_lock\n"
         f"with run_lock({str(out)!r}, prog='jat-generalist', field='--out'):\n"
         "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        run = _generalist("--recipe", str(QUICK), "--out", str(out), "--fresh")
        assert run.returncode == 2, run.stderr
        assert str(holder.pid) in run.stderr and "Traceback" not in run.stderr
        assert (out / "keep.txt").read_text() == "the other run's file"
    finally:
        holder.kill()
        holder.wait()
