"""A full disk (ENOSPC, on a real tmpfs: ``diskfull.py``) under checkpoint saves, ``jat-collect``, ``jat-eval``'s
results and ``jat-report``: each command fails with one line naming the path and the cause, exit status 2, and
every file that existed before is byte-identical and still loads; no temporary file is left behind."""

import json
import os
import shutil

import jat_core.plugins
import pytest
from diskfull import available, run_on_full_disk
from filekit import snapshot
from jat_train.data import open_episodes
from jat_train.training import checkpoint as ckpt
from jat_train.training.runlog import read_log
from toy_cli import EVAL, load_plugins, make_seed, task
from trainkit import assert_one_line_error, train_argv

needs_tmpfs = pytest.mark.skipif(not available(), reason="no private mount namespace here (unshare) for a tmpfs")

NO_SPACE = "No space left on device"


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """What exists before the full disk (:func:`toy_cli.make_seed`)."""
    root = tmp_path_factory.mktemp("seed")
    make_seed(root)
    assert {"results.json", "domains.png", "tasks.png"} <= set(os.listdir(root / "eval"))
    return root


def _full(seed, tmp_path, argv, free):
    """Run ``argv`` on a copy of ``seed`` with ``free`` bytes left; returns (stderr, the files afterwards)."""
    proc = run_on_full_disk(seed, tmp_path / "mnt", tmp_path / "after", argv, free=free)
    assert proc.returncode == 2, proc.stderr
    return proc.stderr, tmp_path / "after"


def _no_temporaries(root):
    left = [os.path.join(d, n) for d, ds, fs in os.walk(root) for n in ds + fs if n.startswith((".tmp-", ".old-"))]
    assert not left, left


@needs_tmpfs
@pytest.mark.slow
@pytest.mark.parametrize("where", ["weights", "optimizer"])
def test_a_checkpoint_save_on_a_full_disk(seed, tmp_path, monkeypatch, where):
    ckpt4 = seed / "run" / "checkpoint-4"
    size = {n: os.path.getsize(ckpt4 / n) for n in os.listdir(ckpt4)}
    free = {"weights": size["model.safetensors"] // 2,
            "optimizer": size["model.safetensors"] + size["optimizer.pt"] // 2}[where]
    err, after = _full(seed, tmp_path, ["jat-train", *train_argv("data", "run", "--resume", "--max-steps", "6")],
                       free)
    assert_one_line_error(err, "jat-train", "cannot write", os.path.join("run", ".tmp-checkpoint-6"), NO_SPACE,
                          "checkpoint 6 was not written")
    for step in (2, 4):
        name = f"checkpoint-{step}"
        assert snapshot(after / "run" / name) == snapshot(seed / "run" / name)
    assert snapshot(after / "data") == snapshot(seed / "data")
    _no_temporaries(after)
    before = (seed / "run" / "log.jsonl").read_text()
    assert (after / "run" / "log.jsonl").read_text().startswith(before)
    assert [r["step"] for r in read_log(after / "run")][:4] == [1, 2, 3, 4]  # whole lines only
    # still loads: the run goes on from checkpoint 4 once there is room
    assert ckpt.resume_checkpoint(str(after / "run")) == str(after / "run" / "checkpoint-4")
    monkeypatch.setattr(jat_core.plugins, "load_plugins", load_plugins)
    if where == "weights":
        from jat_train.training.trainer import main

        assert main(train_argv(after / "data", after / "run", "--resume", "--max-steps", "6")) == 0
        assert [r["step"] for r in read_log(after / "run")] == [1, 2, 3, 4, 5, 6]


@needs_tmpfs
@pytest.mark.slow
def test_jat_collect_on_a_full_disk(seed, tmp_path):
    argv = ["jat-collect", "--tasks", "toy-reach", "--episodes", "40", "--seed", "1", "--out", "collected",
            "--no-progress"]
    err, after = _full(seed, tmp_path, argv, 16 << 10)
    assert_one_line_error(err, "jat-collect", "cannot write", os.path.join("collected", "toy-reach"), NO_SPACE)
    assert snapshot(after / "collected") == snapshot(seed / "collected")
    _no_temporaries(after)
    assert len(open_episodes(task(), str(after / "collected")).dataset) == 2  # the 3 episodes: 2 train, 1 test


@needs_tmpfs
@pytest.mark.slow
@pytest.mark.parametrize("before", ["with plots", "without plots"])
def test_jat_eval_results_on_a_full_disk(seed, tmp_path, before):
    """No room at all, or room for the new results.json but not for plots the folder did not have yet: either
    way the folder keeps its old results.json (and plots), not a mix of the two evaluations."""
    free = 0
    if before == "without plots":
        shutil.copytree(seed, tmp_path / "seed")
        seed, free = tmp_path / "seed", 24 << 10
        for name in ("domains.png", "tasks.png"):
            os.remove(seed / "eval" / name)
    err, after = _full(seed, tmp_path, ["jat-eval", *EVAL, "--seed", "5", "--out", "eval"], free)
    assert_one_line_error(err, "jat-eval", "cannot write", "eval", NO_SPACE)
    assert snapshot(after / "eval") == snapshot(seed / "eval")
    _no_temporaries(after)
    json.loads((after / "eval" / "results.json").read_text())


@needs_tmpfs
@pytest.mark.slow
def test_jat_report_on_a_full_disk(seed, tmp_path):
    err, after = _full(seed, tmp_path, ["jat-report", "--run", "run", "--eval", "eval", "--out", "report"], 24 << 10)
    assert_one_line_error(err, "jat-report", "cannot write", "report", NO_SPACE)
    assert snapshot(after / "report") == snapshot(seed / "report")
    _no_temporaries(after)


# -- the same faults from a patched write (no tmpfs needed) ------------------------------------------------------
def _disk_fills_after(monkeypatch, room):
    """``os.write`` writes ``room`` more bytes in all, then fails with ENOSPC (a short write first, as a disk
    does)."""
    import errno

    real = os.write
    left = [room]

    def write(fd, data):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(memoryview(data).cast("B")[: left[0]]))
        left[0] -= n
        return n

    monkeypatch.setattr(os, "write", write)


def test_a_log_line_is_appended_whole_or_not_at_all(tmp_path, monkeypatch):
    from jat_train.files import append_line

    path = tmp_path / "log.jsonl"
    append_line(path, json.dumps({"step": 1, "loss": 1.0}))
    before = path.read_bytes()
    _disk_fills_after(monkeypatch, 10)
    with pytest.raises(OSError, match=rf"cannot write '.*log.jsonl': {NO_SPACE}") as err:
        append_line(path, json.dumps({"step": 2, "loss": 0.5}))
    assert err.value.errno == 28
    assert path.read_bytes() == before  # the 10 bytes that went in were cut off again


def test_write_files_is_all_or_nothing(tmp_path):
    from jat_train.files import write_files

    (tmp_path / "a.json").write_text("old a")
    (tmp_path / "b.png").write_text("old b")

    def no_room(tmp):
        open(tmp, "w").write("half")
        raise OSError(28, NO_SPACE)

    with pytest.raises(OSError, match=rf"cannot write '.*b.png': {NO_SPACE}; note"):
        write_files({tmp_path / "a.json": lambda tmp: open(tmp, "w").write("new a"), tmp_path / "b.png": no_room},
                    note="note")
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.png"]
    assert (tmp_path / "a.json").read_text() == "old a" and (tmp_path / "b.png").read_text() == "old b"
    assert write_files({tmp_path / "a.json": lambda tmp: open(tmp, "w").write("new a")}) == [str(tmp_path / "a.json")]
    assert (tmp_path / "a.json").read_text() == "new a" and sorted(os.listdir(tmp_path)) == ["a.json", "b.png"]


def test_a_torch_file_that_does_not_fit_names_the_cause(tmp_path, monkeypatch):
    """torch's own writer reports a failed write as "unexpected pos": the error says the disk is full."""
    import torch
    from jat_train.training.torchfiles import save_torch

    _disk_fills_after(monkeypatch, 1000)
    with pytest.raises(OSError, match=rf"cannot write '.*optimizer.pt': {NO_SPACE}; checkpoint 6"):
        save_torch({"w": torch.zeros(10_000)}, str(tmp_path / "optimizer.pt"), "checkpoint 6 was not written")
