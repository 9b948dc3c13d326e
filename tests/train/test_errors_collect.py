"""Bad input and failures in ``jat-collect``: each refused with one line naming the field, task, episode or step,
exit status 2 (130 when interrupted), no traceback, and the task's previous data set byte-identical afterwards;
``--episodes 1`` writes a data set that loads and trains."""

import dataclasses
import os
import subprocess
import sys

import datasets
import jat_core.plugins
import numpy as np
import pytest
from jat_train.cli import collect_main
from jat_train.collection import collect as collect_module
from jat_train.collection.collect import collect_to_disk
from jat_train.data import DataError, open_episodes
from trainkit import ACT, ToyEnv, assert_one_line_error, snapshot, toy_registry, toy_task

TASK = "toy-reach"


def scripted(action_at):
    """An expert factory whose action at episode-step ``t`` (per env) is ``action_at(t)``."""

    def factory(env):
        state = {"t": 0}

        def policy(observation):
            action = action_at(state["t"])
            state["t"] += 1
            return action

        return policy

    return factory


GOOD = scripted(lambda t: np.full(ACT, 0.5, np.float32))


def make_task(expert=GOOD):
    return dataclasses.replace(toy_task(TASK), make_env=ToyEnv.make, expert=expert)


@pytest.fixture
def previous(tmp_path):
    """OUT with a previously collected data set of the task (3 episodes), and its bytes."""
    out = tmp_path / "out"
    collect_to_disk(make_task(), 3, str(out), seed=7, progress=False)
    return out, snapshot(out)


def run(monkeypatch, out, task, *extra, episodes="2"):
    monkeypatch.setattr(jat_core.plugins, "load_plugins", lambda names=None: toy_registry(task))
    return collect_main(["--tasks", TASK, "--episodes", episodes, "--out", str(out), "--no-progress", *extra])


NAN_AT_STEP_2 = scripted(lambda t: np.array([0.1, np.nan] if t == 2 else [0.1, 0.1], np.float32))


@pytest.mark.parametrize(
    "expert, needles",
    [
        (NAN_AT_STEP_2, ["toy-reach", "episode 0", "step 2", "not finite", "continuous_actions"]),
        (scripted(lambda t: np.array([np.inf, 0.0], np.float32)), ["episode 0", "step 0", "not finite"]),
        (scripted(lambda t: np.array([3.0, 0.0], np.float32)), ["toy-reach", "step 0", "outside the action space"]),
        (scripted(lambda t: np.zeros(ACT + 1, np.float32)), ["toy-reach", "continuous_actions", "expected shape (2,)"]),
        (scripted(lambda t: np.array(["a", "b"])), ["toy-reach", "continuous_actions", "expected dtype float32"]),
        (scripted(lambda t: np.zeros(ACT, np.float32) if t < 4 else np.array([0.0, -np.inf])),
         ["episode 0", "step 4", "not finite"]),
    ],
)
def test_bad_actions_are_refused_and_the_previous_data_kept(tmp_path, monkeypatch, capsys, previous, expert, needles):
    out, before = previous
    assert run(monkeypatch, out, make_task(expert)) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", *needles)
    assert snapshot(out) == before


def test_nan_in_a_later_episode_names_it(tmp_path, monkeypatch, capsys, previous):
    out, before = previous
    episodes = {"n": 0}

    def factory(env):
        episodes["n"] += 1
        bad = episodes["n"] == 3
        return lambda obs: np.array([np.nan, 0.0] if bad else [0.0, 0.0], np.float32)

    assert run(monkeypatch, out, make_task(factory), episodes="5") == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", "episode 2", "step 0", "not finite")
    assert snapshot(out) == before


def test_non_finite_observations_and_rewards_are_refused(tmp_path, monkeypatch, capsys, previous):
    out, before = previous

    class NanObs:
        @staticmethod
        def make(**kwargs):
            env = ToyEnv.make()
            real = env._obs
            env._obs = lambda: {"continuous_observations": np.where(np.arange(5) == 1, np.nan, real()["continuous_observations"]).astype(np.float32)}
            return env

    task = dataclasses.replace(make_task(), make_env=NanObs.make)
    assert run(monkeypatch, out, task) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", "toy-reach", "observation 'continuous_observations'",
                          "not finite")

    def nan_reward_env(**kwargs):
        env = ToyEnv.make()
        step = env.step
        env.step = lambda action: (lambda r: (r[0], float("nan"), *r[2:]))(step(action))
        return env

    assert run(monkeypatch, out, dataclasses.replace(make_task(), make_env=nan_reward_env)) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", "the reward", "not finite")
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--episodes", "0"], ["--episodes", "positive"]),
        (["--episodes", "-3"], ["--episodes", "positive"]),
        (["--test-fraction", "1.5"], ["--test-fraction", "[0, 1)"]),
        (["--test-fraction", "-0.1"], ["--test-fraction"]),
        (["--tasks", "toy-reac"], ["unknown task 'toy-reac'", "Did you mean: toy-reach"]),
        (["--policy", "no-colon"], ["--policy", "'module:callable'"]),
        (["--policy", "nonexistent_module_xyz:f"], ["--policy", "cannot load policy", "nonexistent_module_xyz"]),
        (["--policy", "os:not_there"], ["--policy", "cannot load policy"]),
        (["--policy", "os:sep"], ["policy 'os:sep' is not callable"]),
    ],
)
def test_bad_arguments(tmp_path, monkeypatch, capsys, previous, args, needles):
    out, before = previous
    monkeypatch.setattr(jat_core.plugins, "load_plugins", lambda names=None: toy_registry(make_task()))
    argv = {"--tasks": TASK, "--episodes": "2", "--out": str(out)}
    for key, value in zip(args[::2], args[1::2]):
        argv[key] = value
    assert collect_main([x for kv in argv.items() for x in kv] + ["--no-progress"]) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", *needles)
    assert snapshot(out) == before


def test_out_that_is_a_file_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    assert run(monkeypatch, tmp_path / "file", make_task()) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", "--out", "is a file")
    assert run(monkeypatch, tmp_path / "file" / "sub", make_task()) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", "--out", "below the file")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / TASK).write_text("in the way")
    assert run(monkeypatch, tmp_path / "out", make_task()) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", "--out", TASK, "would replace the file")
    assert (tmp_path / "file").read_text() == "x" and (tmp_path / "out" / TASK).read_text() == "in the way"


def test_interrupted_collection_keeps_the_previous_data(tmp_path, monkeypatch, capsys, previous):
    out, before = previous

    def interrupted(t):
        if t == 3:
            raise KeyboardInterrupt
        return np.zeros(ACT, np.float32)

    assert run(monkeypatch, out, make_task(scripted(interrupted))) == 130
    assert capsys.readouterr().err.strip().endswith("jat-collect: interrupted")
    assert snapshot(out) == before


@pytest.mark.parametrize("stage", ["save", "load back", "rename"])
def test_a_failed_write_keeps_the_previous_data(tmp_path, monkeypatch, capsys, previous, stage):
    out, before = previous
    if stage == "save":
        real = datasets.DatasetDict.save_to_disk

        def save_then_fail(self, path, **kwargs):
            real(self, path, **kwargs)  # half the work is on disk, in the temporary directory
            raise OSError(28, "No space left on device", path)

        monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", save_then_fail)
        needles = ["No space left on device"]
    elif stage == "load back":
        monkeypatch.setattr(datasets, "load_from_disk", lambda path, **kw: (_ for _ in ()).throw(ValueError("bad arrow")))
        needles = ["toy-reach", "does not load back", "bad arrow"]
    else:
        real_replace = os.replace

        def replace(src, dst):
            if os.path.basename(src).startswith(".tmp-"):
                raise OSError(13, "Permission denied", dst)
            real_replace(src, dst)

        monkeypatch.setattr(collect_module.os, "replace", replace)
        needles = ["Permission denied"]
    assert run(monkeypatch, out, make_task()) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-collect", *needles)
    assert snapshot(out) == before
    assert os.listdir(out) == [TASK]  # no temporary or set-aside directory left


def test_one_episode_writes_a_data_set_that_loads_and_trains(tmp_path, monkeypatch, capsys):
    assert run(monkeypatch, tmp_path, make_task(), episodes="1") == 0
    assert "1 train + 0 test episodes" in capsys.readouterr().out
    loaded = datasets.load_from_disk(str(tmp_path / TASK))
    assert (len(loaded["train"]), len(loaded["test"])) == (1, 0)
    assert loaded["test"].features == loaded["train"].features  # typed, not a schema-less empty split
    source = open_episodes(make_task(), str(tmp_path))
    index, row = source.next_episode()
    assert index == 0 and len(row["rewards"]) == 5
    with pytest.raises(DataError, match=r"task 'toy-reach': the 'test' split of .*toy-reach' holds no episode"):
        open_episodes(make_task(), str(tmp_path), split="test")


def test_one_episode_then_jat_train(tmp_path, monkeypatch, capsys):
    """The data of ``jat-collect --episodes 1`` trains (one step) with ``jat-train``."""
    from jat_train.training.trainer import main as train_main

    task = make_task()
    assert run(monkeypatch, tmp_path / "data", task, episodes="1") == 0
    code = train_main(["--data", str(tmp_path / "data"), "--output-dir", str(tmp_path / "run"), "--max-steps", "1",
                       "--batch-size", "1", "--tokenizer", "bpe:300", "--model-config", "num_layers=1",
                       "--model-config", "hidden_size=64", "--model-config", "num_heads=2",
                       "--model-config", "max_position_embeddings=16", "--model-config", "vocab_size=300",
                       "--cpu", "--mixed-precision", "no", "--num-threads", "1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert os.path.isdir(tmp_path / "run" / "checkpoint-1")


def test_console_script_exits_2_without_traceback(tmp_path):
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "jat-collect"), "--tasks", TASK, "--episodes", "0",
         "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert_one_line_error(out.stderr, "jat-collect", "--episodes")
    assert os.listdir(tmp_path) == []
