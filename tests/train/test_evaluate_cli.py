"""``jat-eval`` end to end on a real BabyAI task: random / expert policies and a saved model directory."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("minigrid")

from jat_train.cli import eval_main  # noqa: E402

TASK = "babyai-go-to-red-ball"


def test_cli_random_policy(tmp_path, capsys):
    out = tmp_path / "random"
    argv = [
        "--policy",
        "random",
        "--plugins",
        "babyai",
        "--tasks",
        TASK,
        "--episodes",
        "5",
        "--num-envs",
        "2",
    ]
    assert eval_main([*argv, "--out", str(out), "--seed", "3", "--reps", "100", "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["policy"] == "random" and results["seed"] == 3
    assert results["tasks"][TASK]["episodes"] == 5
    assert {"iqm", "ci_low", "ci_high"} <= set(results["domains"]["babyai"]) and "iqm" in results["all"]
    assert (out / "domains.png").exists() and (out / "tasks.png").exists()
    assert "babyai: IQM" in capsys.readouterr().out


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert (
        eval_main(
            ["--policy", "random", "--plugins", "babyai", "--tasks", "babyai-nope", "--out", str(tmp_path)]
        )
        == 2
    )
    assert "unknown task 'babyai-nope'" in capsys.readouterr().err
    assert eval_main(["--policy", "random", "--episodes", "0", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):  # --model and --policy are exclusive
        eval_main(["--policy", "random", "--model", "x", "--out", str(tmp_path)])


def test_cli_saved_model(tmp_path):
    pytest.importorskip("jat_core.agent")
    import jat_core
    import torch
    from jat_core.config import JatConfig
    from jat_core.model import JatModel
    from jat_core.tokenizer import build_tokenizer

    torch.set_num_threads(1)
    tokenizer = build_tokenizer(["go to the red ball"] * 5, 300)
    config = JatConfig.from_preset(
        "tiny", vocab_size=len(tokenizer), num_layers=1, hidden_size=64, num_heads=2
    )
    model = JatModel(config, jat_core.load_plugins("babyai"))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "eval"
    argv = ["--model", str(tmp_path / "model"), "--plugins", "babyai", "--tasks", TASK, "--episodes", "3"]
    assert (
        eval_main(
            [*argv, "--max-steps-per-episode", "5", "--device", "cpu", "--out", str(out), "--no-progress"]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["policy"] == str(tmp_path / "model")
    assert results["actions"] == {"choice": "sample", "temperature": 1.0}  # the reference's default: draws
    # the draws are seeded by --seed: the same run again plays the same episodes
    again = tmp_path / "eval-again"
    assert eval_main([*argv, "--max-steps-per-episode", "5", "--device", "cpu", "--out", str(again),
                      "--no-progress"]) == 0
    assert json.loads((again / "results.json").read_text())["tasks"] == results["tasks"]
    greedy = tmp_path / "eval-argmax"
    assert eval_main([*argv, "--max-steps-per-episode", "5", "--actions", "argmax", "--out", str(greedy),
                      "--no-progress"]) == 0
    assert json.loads((greedy / "results.json").read_text())["actions"]["choice"] == "argmax"
    assert eval_main([*argv, "--temperature", "0", "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    lengths = results["tasks"][TASK]["episode_lengths"]
    assert results["tasks"][TASK]["episodes"] == 3 and len(lengths) == 3 and all(1 <= n <= 5 for n in lengths)
    # the same model acting with bf16 weights (half the bytes per step)
    out16 = tmp_path / "eval-bf16"
    assert eval_main([*argv, "--max-steps-per-episode", "5", "--device", "cpu", "--dtype", "bf16", "--out",
                      str(out16), "--no-progress"]) == 0
    assert json.loads((out16 / "results.json").read_text())["tasks"][TASK]["episodes"] == 3
