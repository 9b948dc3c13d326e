"""Bad arguments to ``jat-train``: each refused with one line naming the option (and the path), exit status 2,
no traceback, and the data and the run directory byte-identical afterwards. Damaged data and checkpoints are in
``test_errors_files.py``."""

import json
import os
import subprocess
import sys

import jat_core.plugins
import pytest
from jat_train.training.trainer import main
from trainkit import assert_one_line_error, snapshot, toy_registry, toy_task, train_argv, write_task

TASK = "toy-reach"


@pytest.fixture(autouse=True)
def toy_plugins(monkeypatch):
    monkeypatch.setattr(jat_core.plugins, "load_plugins", lambda names=None: toy_registry(toy_task()))


@pytest.fixture
def run_copy(tmp_path):
    """Local data of the task and an empty run directory."""
    write_task(str(tmp_path / "data"), toy_task(), [5, 9, 2, 13])
    (tmp_path / "run").mkdir()
    return tmp_path / "data", tmp_path / "run"


# -- arguments ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--output-dir", "FILE"], ["--output-dir", "is a file"]),
        (["--output-dir", "FILE/run"], ["--output-dir", "below the file"]),
        (["--init-from", "./missing-model"], ["--init-from", "'./missing-model' does not exist"]),
        (["--init-from", "runs/typo"], ["--init-from", "'runs/typo' does not exist"]),
        (["--init-from", "FILE"], ["--init-from", "expected a directory"]),
        (["--init-from", "EMPTYDIR"], ["EMPTYDIR"]),
        (["--tokenizer", "./no-tokenizer"], ["--tokenizer", "does not exist"]),
        (["--tokenizer", "bpe:many"], ["--tokenizer", "bpe:N"]),
        (["--tokenizer", "bpe:0"], ["--tokenizer", "bpe:N"]),
        (["--data", "FILE"], ["--data", "is a file"]),
        (["--model-config", "num_layers"], ["--model-config", "KEY=VALUE", "num_layers"]),
        (["--model-config", "=3"], ["--model-config", "KEY=VALUE"]),
        (["--max-steps", "0"], ["max_steps must be positive"]),
        (["--batch-size", "-1"], ["batch_size must be positive"]),
        (["--save-total-limit", "-2"], ["save_total_limit"]),
        (["--kappa", "1.5"], ["kappa must be in [0, 1]"]),
        (["--tasks", "toy-rech"], ["unknown task 'toy-rech'", "Did you mean: toy-reach"]),
        (["--data", "NODATA"], ["no local data", "jat-collect --tasks toy-reach"]),
    ],
)
def test_bad_arguments(run_copy, tmp_path, monkeypatch, capsys, extra, needles):
    data, run = run_copy
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "FILE").write_text("a file")
    (tmp_path / "EMPTYDIR").mkdir()
    before = snapshot(tmp_path)
    argv = train_argv(data, run, *extra)
    assert main(argv) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-train", *needles)
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("NODATA")} == before


def test_console_script_exits_2_without_traceback(tmp_path):
    (tmp_path / "FILE").write_text("x")
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "jat-train"), "--output-dir",
                          str(tmp_path / "FILE"), "--data", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert_one_line_error(out.stderr, "jat-train", "--output-dir", "is a file")
    assert (tmp_path / "FILE").read_text() == "x"
    assert json.dumps(sorted(os.listdir(tmp_path))) == '["FILE"]'
