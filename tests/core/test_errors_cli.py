"""Bad input to the jat-core console scripts (``jat-plugins``, ``jat-convert``) and the shared runner: one line on
stderr naming the field or file, exit status 2, no traceback (unless ``--debug`` / ``JAT_DEBUG=1``), and nothing
written or changed."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from filekit import snapshot
from jat_core import cli
from jat_core.cli import (
    UserError,
    check_output_dir,
    check_source,
    error_message,
    looks_like_local_path,
    run_console_script,
)
from jat_core.convert import main as convert_main

CHECKPOINT = Path(__file__).parent.parent / "fixtures" / "reference-parity" / "reference-checkpoint"
BIN = Path(sys.executable).parent


def one_error_line(err: str, prog: str, *needles: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- the shared runner ----------------------------------------------------------------------------------------
def _raiser(exc):
    def body(argv):
        raise exc

    return body


@pytest.mark.parametrize(
    "exc, code, needle",
    [
        (ValueError("bad --x: expected 3\nsecond line"), 2, "bad --x: expected 3 second line"),
        (UserError("--model: nope"), 2, "--model: nope"),
        (FileNotFoundError(2, "No such file or directory", "/a/b.json"), 2, "/a/b.json"),
        (KeyError("unknown task 'x'"), 2, "unknown task 'x'"),
        (json.JSONDecodeError("Expecting value", "{", 1), 2, "Expecting value"),
        (ZeroDivisionError("boom"), 1, "ZeroDivisionError: boom"),
        (RuntimeError(""), 1, "RuntimeError: RuntimeError"),
    ],
)
def test_runner_turns_errors_into_one_line_and_a_status(exc, code, needle, capsys, monkeypatch):
    monkeypatch.delenv("JAT_DEBUG", raising=False)
    assert run_console_script("jat-x", _raiser(exc), []) == code
    line = one_error_line(capsys.readouterr().err, "jat-x", needle)
    assert ("--debug" in line) == (code == 1)  # a bug says how to see the traceback


def test_runner_exit_codes_interrupts_and_debug(capsys, monkeypatch):
    monkeypatch.delenv("JAT_DEBUG", raising=False)
    assert run_console_script("jat-x", _raiser(FloatingPointError("nan loss")), [], exit_codes={FloatingPointError: 1}) == 1
    assert "--debug" not in one_error_line(capsys.readouterr().err, "jat-x", "nan loss")
    assert run_console_script("jat-x", _raiser(KeyboardInterrupt()), []) == 130
    assert capsys.readouterr().err.strip() == "jat-x: interrupted"
    assert run_console_script("jat-x", lambda argv: None, []) == 0
    assert run_console_script("jat-x", lambda argv: 3, []) == 3
    with pytest.raises(SystemExit):  # argparse errors keep their own status 2
        run_console_script("jat-x", _raiser(SystemExit(2)), [])
    # the traceback on request: a flag (before any "--") or the environment
    assert run_console_script("jat-x", _raiser(ValueError("bad")), ["a", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("jat-x: error: bad")
    run_console_script("jat-x", _raiser(ValueError("bad")), ["--", "--debug"])
    assert "Traceback" not in capsys.readouterr().err
    monkeypatch.setenv("JAT_DEBUG", "1")
    run_console_script("jat-x", _raiser(ValueError("bad")), [])
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("JAT_DEBUG", "0")
    run_console_script("jat-x", _raiser(ValueError("bad")), [])
    assert "Traceback" not in capsys.readouterr().err


def test_error_message_is_one_line():
    assert error_message(KeyError("a 'b'")) == "a 'b'"
    assert error_message(ValueError("x\n\n  y  \n")) == "x y"
    assert error_message(ValueError()) == "ValueError"


# -- paths ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ref, local",
    [
        ("jat-project/jat", False),
        ("gpt2", False),
        ("owner/name-v2.1", False),
        ("./model", True),
        ("../model", True),
        (".model", True),
        ("/abs/model", True),
        ("~/model", True),
        ("runs/exp/checkpoint-3", True),
        ("a/b/", True),
        ("C:\\models\\x", True),
        ("", True),
    ],
)
def test_local_path_or_hub_id(ref, local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert looks_like_local_path(ref) is local


def test_existing_and_partly_existing_paths_are_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "model").mkdir()
    assert looks_like_local_path("model")  # exists: local, like transformers does
    assert looks_like_local_path("runs/typo")  # "runs" exists: a local path with a typo, not a hub id
    assert not looks_like_local_path("owner/typo")


def test_check_source_and_output_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert check_source("model", "--model") == "model"
    assert check_source("owner/name", "--model") == "owner/name"  # a hub id is left to the hub
    for ref in ("./missing", "/nonexistent/x", "runs/a/b"):
        with pytest.raises(UserError, match=rf"--model: the local directory '{ref}' does not exist"):
            check_source(ref, "--model")
    with pytest.raises(UserError, match="--model: expected a directory, 'file.txt' is a file"):
        check_source("file.txt", "--model")
    assert check_source("file.txt", "--tokenizer", kind="path") == "file.txt"
    assert check_output_dir("new/deep/dir", "--out") == "new/deep/dir"
    assert check_output_dir("model", "--out") == "model"
    with pytest.raises(UserError, match="--out: expected a directory, 'file.txt' is a file"):
        check_output_dir("file.txt", "--out")
    with pytest.raises(UserError, match="--out: expected a directory, 'file.txt/sub' is below the file"):
        check_output_dir("file.txt/sub", "--out")
    with pytest.raises(UserError, match="empty"):
        check_output_dir("", "--out")
    assert not (tmp_path / "new").exists()  # checks create nothing


# -- jat-plugins ----------------------------------------------------------------------------------------------
def test_jat_plugins_unknown_plugin_in_process(capsys):
    assert cli.plugins_main(["--plugins", "nope,codecs"]) == 2
    one_error_line(capsys.readouterr().err, "jat-plugins", "unknown plugin(s) ['nope']")


def test_jat_plugins_console_script_exits_2_without_traceback():
    out = subprocess.run([str(BIN / "jat-plugins"), "--plugins", "nope"], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    one_error_line(out.stderr, "jat-plugins", "nope")
    debug = subprocess.run([str(BIN / "jat-plugins"), "--plugins", "nope", "--debug"], capture_output=True, text=True)
    assert debug.returncode == 2 and "Traceback" in debug.stderr


# -- jat-convert ----------------------------------------------------------------------------------------------
def _source(tmp_path, damage=None) -> Path:
    """A copy of the reference checkpoint (weights linked unless damaged)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CHECKPOINT / "config.json", src / "config.json")
    if damage is None:
        os.symlink(CHECKPOINT / "model.safetensors", src / "model.safetensors")
    else:
        damage(src)
    return src


def _weights_bytes() -> bytes:
    return (CHECKPOINT / "model.safetensors").read_bytes()


def _truncated(src):
    data = _weights_bytes()
    (src / "model.safetensors").write_bytes(data[: len(data) // 3])


def _garbage_header(src):
    data = _weights_bytes()
    rng = np.random.default_rng(0)
    (src / "model.safetensors").write_bytes(rng.integers(0, 256, 64, dtype=np.uint8).tobytes() + data[64:])


def _empty_weights(src):
    (src / "model.safetensors").write_bytes(b"")


def _bad_config(src):
    os.symlink(CHECKPOINT / "model.safetensors", src / "model.safetensors")
    (src / "config.json").write_text('{"hidden_size": 64,')


def _config_list(src):
    os.symlink(CHECKPOINT / "model.safetensors", src / "model.safetensors")
    (src / "config.json").write_text("[1, 2]")


def _no_weights(src):
    pass


def _bad_index(src):
    (src / "model.safetensors.index.json").write_text('{"weight_map": ')


@pytest.mark.parametrize(
    "damage, needles",
    [
        (_truncated, ["model.safetensors", "cannot read the weights file"]),
        (_garbage_header, ["model.safetensors"]),
        (_empty_weights, ["model.safetensors"]),
        (_bad_config, ["config.json", "not valid JSON"]),
        (_config_list, ["config.json", "expected a JSON object"]),
        (_no_weights, ["expected one of", "model.safetensors"]),
        (_bad_index, ["model.safetensors.index.json", "not valid JSON"]),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_convert_damaged_source_names_the_file_and_writes_nothing(tmp_path, capsys, damage, needles):
    src = _source(tmp_path, damage)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    before = snapshot(tmp_path)
    assert convert_main([str(src), str(out)]) == 2
    captured = capsys.readouterr()
    one_error_line(captured.err, "jat-convert", "SRC", *needles)
    assert "wrote" not in captured.out
    assert snapshot(tmp_path) == before  # OUT untouched, no temporary directory left


@pytest.mark.parametrize(
    "src, out, needles",
    [
        ("./missing-checkpoint", "out", ["SRC: the local directory './missing-checkpoint' does not exist"]),
        ("/nonexistent/checkpoint", "out", ["SRC", "'/nonexistent/checkpoint' does not exist"]),
        ("runs/typo", "out", ["SRC", "'runs/typo' does not exist"]),  # runs/ exists: a local path
        ("a/b/c", "out", ["SRC", "'a/b/c' does not exist"]),
        ("file.txt", "out", ["SRC: expected a directory, 'file.txt' is a file"]),
        ("src", "file.txt", ["OUT: expected a directory, 'file.txt' is a file"]),
        ("src", "file.txt/sub", ["OUT", "below the file"]),
    ],
)
def test_convert_bad_paths(tmp_path, monkeypatch, capsys, src, out, needles):
    monkeypatch.chdir(tmp_path)
    _source(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "file.txt").write_text("not a directory")
    before = snapshot(tmp_path)
    assert convert_main([src, out]) == 2
    captured = capsys.readouterr()
    one_error_line(captured.err, "jat-convert", *needles)
    assert "wrote" not in captured.out
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def test_convert_failure_while_writing_leaves_out_and_says_nothing_was_written(tmp_path, monkeypatch, capsys):
    from jat_core.model import JatModel

    src = _source(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text("{}")
    before = snapshot(tmp_path)

    def fails(self, directory, **kwargs):
        raise OSError(28, "No space left on device", str(directory))

    monkeypatch.setattr(JatModel, "save_pretrained", fails)
    assert convert_main([str(src), str(out)]) == 2
    captured = capsys.readouterr()
    one_error_line(captured.err, "jat-convert", "No space left on device")
    assert "wrote" not in captured.out and snapshot(tmp_path) == before

    monkeypatch.setattr(JatModel, "save_pretrained", lambda self, directory, **kwargs: None)  # writes nothing
    assert convert_main([str(src), str(tmp_path / "new")]) == 2
    captured = capsys.readouterr()
    one_error_line(captured.err, "jat-convert", "nothing was written")
    assert "wrote" not in captured.out and not (tmp_path / "new").exists()


def test_convert_into_an_existing_directory_keeps_other_files(tmp_path, capsys):
    src = _source(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert convert_main([str(src), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temporary directory left


def test_jat_convert_console_script_exits_2_without_traceback(tmp_path):
    out = subprocess.run([str(BIN / "jat-convert"), "./nowhere", str(tmp_path / "out")], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    one_error_line(out.stderr, "jat-convert", "SRC", "does not exist")
    assert "wrote" not in out.stdout and not (tmp_path / "out").exists()
