"""One run per output folder (:mod:`jat_train.run_lock`): a second ``jat-train`` or ``jat-collect`` into a folder
that a live process is writing is refused in one line naming the pid and the folder, and writes nothing; a lock
left by a killed process is taken over with a warning naming it."""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys

import jat_core.plugins
import pytest
from jat_train import run_lock as run_lock_module
from jat_train.cli import collect_main
from jat_train.run_lock import LOCK_FILE, RunLockError, run_lock
from jat_train.training.trainer import main, read_log
from trainkit import ToyEnv, assert_one_line_error, snapshot, toy_registry, toy_task, train_argv, write_task

HOLD = """
import sys, time
from jat_train.run_lock import run_lock
with run_lock(sys.argv[1], prog="holder", field="--out"):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder():
    """Start a process that holds a folder's lock (``start(folder)``); every one is killed at the end."""
    procs = []

    def start(folder):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_live_holder_refuses_a_second_lock_naming_its_pid_and_the_folder(tmp_path, holder):
    proc = holder(tmp_path / "run")
    with pytest.raises(RunLockError) as err:
        with run_lock(tmp_path / "run", prog="jat-train", field="--output-dir"):
            pass
    message = str(err.value)
    assert f"pid {proc.pid}" in message and str(tmp_path / "run") in message and "--output-dir" in message
    assert "holder" in message and "\n" not in message


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_warning(tmp_path, holder):
    proc = holder(tmp_path / "run")
    _kill(proc)
    assert os.path.exists(tmp_path / "run" / LOCK_FILE)  # SIGKILL: nothing removed it
    warnings = []
    with run_lock(tmp_path / "run", prog="jat-train", warn=warnings.append) as path:
        assert json.loads(open(path).read())["pid"] == os.getpid()
    assert len(warnings) == 1 and f"pid {proc.pid}" in warnings[0] and "no longer running" in warnings[0]
    assert not os.path.exists(tmp_path / "run" / LOCK_FILE)  # a clean exit removes it


def test_the_lock_is_released_on_exit_and_on_error(tmp_path):
    with pytest.raises(KeyError):
        with run_lock(tmp_path, prog="a"):
            raise KeyError("boom")
    warnings = []
    with run_lock(tmp_path, prog="b", warn=warnings.append):
        with pytest.raises(RunLockError, match=f"pid {os.getpid()}"):  # one holder, even in one process
            with run_lock(tmp_path, prog="c"):
                pass
    assert warnings == [] and os.listdir(tmp_path) == []


def test_without_file_locks_the_recorded_pid_decides(tmp_path, holder, monkeypatch):
    """A file system without locks (ENOLCK): a live holder on this host keeps the folder, a dead one is taken over."""
    proc = holder(tmp_path / "run")
    monkeypatch.setattr(run_lock_module, "_lock_file", lambda fd: False)
    with pytest.raises(RunLockError, match=f"pid {proc.pid}.*if it is gone, remove"):
        with run_lock(tmp_path / "run", prog="jat-train"):
            pass
    _kill(proc)
    warnings = []
    with run_lock(tmp_path / "run", prog="jat-train", warn=warnings.append):
        pass
    assert len(warnings) == 1 and f"pid {proc.pid}" in warnings[0]


# -- the commands ----------------------------------------------------------------------------------------------
@pytest.fixture
def toy_plugins(monkeypatch):
    task = dataclasses.replace(toy_task(), make_env=ToyEnv.make, expert=lambda env: lambda obs: [0.1, 0.1])
    monkeypatch.setattr(jat_core.plugins, "load_plugins", lambda names=None: toy_registry(task))


def test_a_second_jat_train_into_a_live_run_folder_is_refused(tmp_path, holder, toy_plugins, capsys):
    write_task(str(tmp_path / "data"), toy_task(), [5, 9, 2, 13])
    proc = holder(tmp_path / "run")
    before = snapshot(tmp_path / "run")
    assert main(train_argv(tmp_path / "data", tmp_path / "run")) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-train", "--output-dir", str(tmp_path / "run"),
                          f"pid {proc.pid}", "in use")
    assert snapshot(tmp_path / "run") == before


def test_jat_train_takes_over_the_folder_of_a_killed_run(tmp_path, holder, toy_plugins, caplog):
    write_task(str(tmp_path / "data"), toy_task(), [5, 9, 2, 13])
    _kill(holder(tmp_path / "run"))
    with caplog.at_level(logging.WARNING):
        assert main(train_argv(tmp_path / "data", tmp_path / "run", "--max-steps", "2")) == 0
    assert any("taking over the lock" in r.getMessage() for r in caplog.records)
    assert [r["step"] for r in read_log(str(tmp_path / "run"))] == [1, 2]
    assert not os.path.exists(tmp_path / "run" / LOCK_FILE)


def test_a_second_jat_collect_into_a_live_folder_is_refused(tmp_path, holder, toy_plugins, capsys):
    proc = holder(tmp_path / "out")
    before = snapshot(tmp_path / "out")
    argv = ["--tasks", "toy-reach", "--episodes", "2", "--out", str(tmp_path / "out"), "--no-progress"]
    assert collect_main(argv) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", "--out", str(tmp_path / "out"),
                          f"pid {proc.pid}", "in use")
    assert snapshot(tmp_path / "out") == before
    _kill(proc)
    assert collect_main(argv) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["toy-reach"]
