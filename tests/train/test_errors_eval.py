"""Bad input to ``jat-eval``: missing or damaged models, bad options, an output that is a file, a model that acts
with NaN; each one line on stderr naming the option or file, exit status 2, no traceback, and the model and
earlier results byte-identical afterwards."""

import dataclasses
import os
import subprocess
import sys

import jat_core.plugins
import numpy as np
import pytest
import torch
from jat_train.evaluation.evaluate import main
from jat_train.evaluation.policies import ModelPolicy
from trainkit import ToyEnv, assert_one_line_error, snapshot, toy_registry, toy_task

MODEL = {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 16, "window_size": 8,
         "vocab_size": 300}
TASK = "toy-reach"


def env_task():
    return dataclasses.replace(toy_task(), make_env=ToyEnv.make)


@pytest.fixture(autouse=True)
def toy_plugins(monkeypatch):
    monkeypatch.setattr(jat_core.plugins, "load_plugins", lambda names=None: toy_registry(env_task()))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from jat_core.config import JatConfig
    from jat_core.model import JatModel

    root = tmp_path_factory.mktemp("saved")
    torch.manual_seed(0)
    JatModel(JatConfig.from_preset("tiny", **MODEL), registry=toy_registry(env_task())).save_pretrained(root / "model")
    return root / "model"


@pytest.fixture
def workdir(saved, tmp_path, monkeypatch):
    """tmp_path as the working directory: a copy of the model, a file, a previous results folder."""
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(saved, tmp_path / "model")
    (tmp_path / "FILE").write_text("a file")
    (tmp_path / "runs").mkdir()
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "results.json").write_text('{"previous": true}')
    return tmp_path


def _args(*extra, out="eval"):
    return ["--tasks", TASK, "--episodes", "2", "--out", out, "--no-progress", "--device", "cpu", *extra]


def _damage_weights(root):
    data = (root / "model" / "model.safetensors").read_bytes()
    (root / "model" / "model.safetensors").write_bytes(data[: len(data) // 2])


def _garbage_config(root):
    (root / "model" / "config.json").write_text("{ not json")


def _no_config(root):
    os.remove(root / "model" / "config.json")


def _no_weights(root):
    os.remove(root / "model" / "model.safetensors")


def _bad_tokenizer(root):
    (root / "model" / "tokenizer.json").write_text("{\"version\": ")


@pytest.mark.parametrize("damage", [_damage_weights, _garbage_config, _no_config, _no_weights, _bad_tokenizer],
                         ids=lambda f: f.__name__)
def test_a_damaged_model_is_one_line_naming_it(workdir, capsys, damage):
    damage(workdir)
    before = snapshot(workdir)
    assert main(_args("--model", "model")) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-eval", "--model 'model'", "cannot load")
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--model", "./missing"], ["--model: the local directory './missing' does not exist"]),
        (["--model", "/nonexistent/model"], ["--model", "does not exist"]),
        (["--model", "runs/typo"], ["--model", "'runs/typo' does not exist"]),
        (["--model", "a/b/c"], ["--model", "'a/b/c' does not exist"]),
        (["--model", "FILE"], ["--model: expected a directory, 'FILE' is a file"]),
        (["--policy", "random", "--episodes", "0"], ["--episodes must be positive"]),
        (["--policy", "random", "--num-envs", "-1"], ["--num-envs must be positive"]),
        (["--policy", "random", "--reps", "0"], ["--reps must be positive"]),
        (["--policy", "random", "--max-steps-per-episode", "0"], ["--max-steps-per-episode must be positive"]),
        (["--policy", "random", "--tasks", "toy-rech"], ["unknown task 'toy-rech'"]),
        (["--policy", "expert"], ["no task to evaluate"]),
    ],
)
def test_bad_arguments(workdir, capsys, extra, needles):
    before = snapshot(workdir)
    assert main([*_args(), *extra]) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-eval", *needles)
    assert snapshot(workdir) == before


@pytest.mark.parametrize("out, needle", [("FILE", "is a file"), ("FILE/sub", "below the file")])
def test_out_that_is_a_file_is_refused(workdir, capsys, out, needle):
    before = snapshot(workdir)
    assert main(_args("--policy", "random", out=out)) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-eval", "--out", needle)
    assert snapshot(workdir) == before


def test_a_model_that_acts_nan_is_refused(workdir, capsys, monkeypatch):
    """NaN actions (e.g. NaN weights) never reach the env: one line naming the task."""

    class NanAgent:
        def reset(self, num_envs=1, env_ids=None):
            pass

        def act(self, observations, rewards):
            return np.full((len(rewards), 2), np.nan, np.float32)

    class NanModel:
        config = None

        def agent(self, task, **kwargs):
            return NanAgent()

    import gymnasium as gym

    policy = ModelPolicy(NanModel(), env_task(), gym.spaces.Box(-1, 1, (2,), np.float32))
    with pytest.raises(ValueError, match=r"task 'toy-reach': the model's agent returned non-finite actions for env\(s\) \[0, 1\]"):
        policy.act({}, np.zeros(2))
    from jat_train.evaluation import evaluate

    monkeypatch.setattr(evaluate, "load_model", lambda path, device=None, dtype="fp32": (NanModel(), {}))
    before = snapshot(workdir)
    assert main(_args("--model", "model")) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-eval", "toy-reach", "non-finite actions")
    assert snapshot(workdir) == before


def test_console_script_exits_2_without_traceback(tmp_path):
    (tmp_path / "FILE").write_text("x")
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "jat-eval"), "--model", "./nowhere",
                          "--out", "out"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert_one_line_error(out.stderr, "jat-eval", "--model", "'./nowhere' does not exist")
    assert os.listdir(tmp_path) == ["FILE"]
