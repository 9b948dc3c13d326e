"""The benchmark scripts run and print the JSON fields their docstrings promise (tiny sizes; no timing asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_json(script: str, *args: str) -> list[dict]:
    """Run ``bench/<script> --json ...`` and parse its lines."""
    out = subprocess.run(
        [sys.executable, str(BENCH / script), "--json", *args], check=True, capture_output=True, text=True, timeout=600
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_trunk_bench_reports_speedups_and_the_linear_floor():
    (case,) = run_json("trunk.py", "--sizes", "tiny", "--tokens", "64", "--repeats", "1")
    assert case["size"] == "tiny" and case["tokens"] == 64
    for key in ("eager_s", "ours_s", "floor_s", "fwd_eager_s", "fwd_ours_s"):
        assert case[key] > 0, key
    # ratios of the unrounded times; the printed seconds are rounded to 0.1 ms
    assert case["speedup"] == pytest.approx(case["eager_s"] / case["ours_s"], rel=0.1)
    assert case["bound"] == pytest.approx(case["eager_s"] / case["floor_s"], rel=0.1)
    assert case["max_abs_diff"] < 1e-4  # the two models computed the same function


def test_agent_bench_reports_speedups_and_the_per_env_cost():
    rows = run_json("agent.py", "--preset", "tiny", "--cases", "continuous,babyai", "--envs", "1,3",
                    "--context", "6", "--steps", "3", "--repeats", "1", "--baseline-steps", "1")
    assert [(r["case"], r["num_envs"]) for r in rows] == [("continuous", 1), ("continuous", 3), ("babyai", 1),
                                                          ("babyai", 3)]
    for row in rows:
        assert row["ms_per_step"] > 0 and row["baseline_ms_per_step"] > 0 and row["speedup"] > 0
    for one, three in (rows[:2], rows[2:]):
        assert "fixed_ms" not in one and one["throughput_vs_1_env"] == 1.0
        fit = three["fixed_ms"] + 3 * three["per_env_ms"]
        assert abs(fit - three["ms_per_step"]) < 1e-2  # the line passes through both measurements


GPU_FIELDS = ("case", "preset", "device", "precision", "batch", "tokens_per_step", "step_s", "tokens_per_s", "tflops",
              "peak_tflops", "mfu", "model_tflops", "model_mfu")


def check_gpu_rows(rows: list[dict], tasks: list[str]) -> None:
    """One row per task, then the overall one; every field there, rates positive and finite."""
    assert [r["case"] for r in rows] == [*tasks, "overall"]
    for row in rows:
        for key in GPU_FIELDS:
            assert key in row, (row["case"], key)
        assert row["preset"] == "tiny" and row["device"] == "cpu" and row["batch"] == 1 and row["peak_tflops"] == 1
        for key in ("tokens_per_s", "mfu", "step_s", "tflops", "model_mfu", "loss"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["case"], key, row[key])
        assert row["mfu"] == pytest.approx(row["tflops"] / row["peak_tflops"], rel=1e-3)
        assert row["steps"] >= (2 if row["case"] != "overall" else 2 * len(tasks))
    by_case = {r["case"]: r for r in rows}
    for task in tasks:  # 2 tokens per RL step (observation + action), 1 per text token
        expected = {"continuous": 512, "babyai": 512, "atari": 64, "text": 512}[task]
        assert by_case[task]["tokens_per_step"] == expected


GPU_SMOKE = ("--preset", "tiny", "--device", "cpu", "--steps", "2", "--warmup", "1", "--batch-size", "1", "--no-compile",
             "--peak-tflops", "1")


def test_gpu_bench_trains_every_modality_in_process_on_cpu():
    rows = run_json("gpu.py", *GPU_SMOKE, "--num-workers", "0")
    check_gpu_rows(rows, ["continuous", "babyai", "atari", "text"])
    assert rows[-1]["num_workers"] == 0 and rows[-1]["compile"] == "off"


def test_gpu_bench_reads_batches_from_a_dataloader_worker():
    rows = run_json("gpu.py", *GPU_SMOKE, "--num-workers", "1", "--tasks", "continuous,atari", "--frames", "uint8")
    check_gpu_rows(rows, ["continuous", "atari"])
    assert rows[-1]["num_workers"] == 1


def test_train_step_bench_compares_fp32_and_bf16_on_the_same_batch():
    rows = run_json("train_step.py", "--preset", "tiny", "--cases", "continuous,atari", "--repeats", "1")
    assert [r["case"] for r in rows] == ["continuous", "atari"]
    for row in rows:
        assert row["fp32_s"] > 0 and row["bf16_s"] > 0
        assert row["speedup"] == pytest.approx(row["fp32_s"] / row["bf16_s"], rel=0.05)
        # bf16 autocast computes the same loss to bf16 precision
        assert math.isfinite(row["loss_bf16"]) and row["loss_bf16"] == pytest.approx(row["loss_fp32"], rel=0.05)


def test_agent_bench_acts_in_bf16_and_reports_agreement():
    rows = run_json("agent.py", "--preset", "tiny", "--cases", "continuous,atari", "--envs", "1", "--context", "6",
                    "--steps", "3", "--repeats", "1", "--baseline-steps", "1", "--dtype", "bf16")
    for row in rows:
        assert row["dtype"] == "bf16" and row["ms_per_step"] > 0
        assert 0.0 <= row["agreement_with_fp32"] <= 1.0


EVAL_FIELDS = ("mode", "num_envs", "tasks", "episodes", "env_steps", "seconds", "env_steps_per_s",
               "speedup_vs_reference", "env_share")


def test_eval_bench_times_every_mode_on_real_envs():
    rows = run_json("eval.py", "--tasks", "babyai-go-to-local,metaworld-reach", "--episodes", "2",
                    "--max-steps-per-episode", "5", "--num-envs", "2")
    assert [(r["mode"], r["num_envs"]) for r in rows] == [("reference", 1), ("batched", 2), ("async", 2),
                                                          ("workers", 2), ("envs_only", 2), ("envs_only_workers", 2)]
    for row in rows:
        for key in EVAL_FIELDS:
            assert key in row, (row["mode"], key)
        assert row["tasks"] == 2 and row["episodes"] == 2
        assert 2 * 2 <= row["env_steps"] <= 2 * 2 * 5  # 2 tasks x 2 episodes of 1 to 5 steps (the cap)
        for key in ("seconds", "env_steps_per_s", "speedup_vs_reference", "env_share"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["mode"], key, row[key])
        assert row["env_steps_per_s"] == pytest.approx(row["env_steps"] / row["seconds"], rel=0.01, abs=0.051)  # rounded to 0.1
    by_mode = {r["mode"]: r for r in rows}
    assert by_mode["reference"]["speedup_vs_reference"] == 1.0 and by_mode["envs_only"]["env_share"] == 1.0
    assert by_mode["envs_only_workers"]["env_share"] == 1.0
    assert by_mode["workers"]["env_steps"] == by_mode["batched"]["env_steps"]  # the same episodes


def test_atari_experts_bench_reports_scores_and_cost():
    pytest.importorskip("ale_py")
    (row,) = run_json("atari_experts.py", "--tasks", "atari-boxing", "--episodes", "1")  # a knockout: about 2 s
    assert row["task"] == "atari-boxing" and row["episodes"] == 1 and len(row["returns"]) == 1
    assert row["return_mean"] == row["returns"][0] >= 90 and row["return_std"] == 0
    assert row["normalised"] == pytest.approx((row["return_mean"] - 0.1) / (97.968393 - 0.1))
    assert row["steps_mean"] > 0 and row["policy_ms_per_step"] > 0 and row["env_ms_per_step"] > 0


def test_collect_bench_compares_two_checkouts_on_the_same_data():
    root = str(BENCH.parent)  # this checkout against itself: the same data, ratios near 1
    rows = run_json("collect.py", "--tasks", "babyai-go-to-red-ball,metaworld-reach", "--episodes", "1",
                    "--rounds", "1", "--baseline", root)
    assert [r["task"] for r in rows] == ["babyai-go-to-red-ball", "metaworld-reach", "domain:babyai",
                                         "domain:metaworld", "all"]
    for row in rows:
        assert row["steps"] > 0 and row["rate"] > 0 and row["cpu_rate"] > 0 and row["speedup"] > 0, row
        assert row["same_data"] is True
        assert 0 <= row["env_share"] <= 1 and 0 <= row["expert_share"] <= 1, row
    assert rows[-1]["steps"] == rows[0]["steps"] + rows[1]["steps"]
