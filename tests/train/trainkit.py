"""Shared helpers of the training tests: a third-party domain defined inline, and local data in the
``jat-collect`` schema (one row per episode, ``save_to_disk`` with train/test splits)."""

from __future__ import annotations

import os
import types

import numpy as np
import torch
from filekit import snapshot  # noqa: F401  (re-exported for the error tests)
from jat_core import DatasetSpec, FieldSpec, TaskSpec, hookimpl

OBS, ACT = 5, 2


def toy_task(name: str = "toy-reach", *, obs: int = OBS, act: int = ACT, loss_weight: float = 1.0,
             sample_weight: float = 1.0, context_steps: int | None = None) -> TaskSpec:
    """A continuous task of a domain the project knows nothing about."""
    return TaskSpec(
        name=name,
        domain="toy",
        observation=(FieldSpec("continuous_observations", codec="continuous", shape=(obs,)),),
        action=FieldSpec("continuous_actions", codec="continuous", shape=(act,), low=-1.0, high=1.0),
        dataset=DatasetSpec(repo="nobody/toy-dataset", config=name),
        loss_weight=loss_weight,
        sample_weight=sample_weight,
        context_steps=context_steps,
    )


def toy_plugin(*tasks: TaskSpec):
    """An inline third-party domain plugin registering ``tasks``."""

    @hookimpl
    def jat_register_tasks(register):
        for t in tasks:
            register(t)

    return types.SimpleNamespace(jat_register_tasks=jat_register_tasks)


def toy_registry(*tasks: TaskSpec):
    """A registry with the real codecs (the installed codec plugin) and the toy domain only."""
    import jat_codecs.plugin
    from jat_core import load_plugins

    return load_plugins(extra={"codecs": jat_codecs.plugin, "toy": toy_plugin(*tasks)}, entry_points=False)


def episode(length: int, *, obs: int = OBS, act: int = ACT, seed: int = 0, offset: float = 0.0) -> dict:
    """One random continuous episode; step ``t``'s reward is ``offset + t`` so shifts are visible."""
    rng = np.random.default_rng(seed)
    return {
        "continuous_observations": rng.normal(size=(length, obs)).astype(np.float32).tolist(),
        "continuous_actions": rng.uniform(-1, 1, size=(length, act)).astype(np.float32).tolist(),
        "rewards": (offset + np.arange(length, dtype=np.float32)).tolist(),
    }


def write_task(root: str, task: TaskSpec, lengths: list[int], *, seed: int = 0, test_lengths=(3,)) -> str:
    """Write ``root/<task>/`` with ``save_to_disk`` (train/test splits), one row per episode."""
    from datasets import Dataset, DatasetDict

    def rows(ls, base):
        eps = [episode(n, obs=task.observation[0].shape[0], act=task.action.shape[0], seed=base + i,
                       offset=float(i)) for i, n in enumerate(ls)]
        return {k: [e[k] for e in eps] for k in eps[0]}

    path = os.path.join(root, task.dataset.local_name or task.dataset.config)
    DatasetDict(
        {"train": Dataset.from_dict(rows(lengths, seed)), "test": Dataset.from_dict(rows(test_lengths, seed + 999))}
    ).save_to_disk(path)
    return path


class ArrayProcessor:
    """Stand-in processor for pure data tests: every field becomes a tensor under its own name."""

    def prepare_observations(self, task, values):
        return {k: torch.as_tensor(v) for k, v in values.items()}

    def prepare_actions(self, task, values):
        return {task.action.name: torch.as_tensor(values)}

    def prepare_rewards(self, values, task=None):
        return {"rewards": torch.as_tensor(values)}


def write_rows(root: str, name: str, rows: list[dict], features=None) -> str:
    """Write ``root/<name>/`` (a train split) from rows given as dicts."""
    from datasets import Dataset, DatasetDict

    path = os.path.join(root, name)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    DatasetDict({"train": Dataset.from_dict(columns, features=features)}).save_to_disk(path)
    return path


def grid_task(name: str = "toy-grid") -> TaskSpec:
    """A task whose observation joins 148 integers and a mission string in one discrete codec input."""
    return TaskSpec(
        name=name,
        domain="toy",
        observation=(
            FieldSpec("discrete_observations", codec="discrete", shape=(148,), dtype="int64"),
            FieldSpec("text_observations", codec="discrete", shape=(), dtype="string", max_tokens=64),
        ),
        action=FieldSpec("discrete_actions", codec="discrete", shape=(), dtype="int64", n=7),
        dataset=DatasetSpec(repo="nobody/toy-dataset", config=name),
    )


def text_task(name: str = "toy-text", *, images: bool = False, image_size: int = 32) -> TaskSpec:
    """A text task (documents, or captions with an image before the text)."""
    text = FieldSpec("text", codec="text", shape=(), dtype="string")
    image = FieldSpec("images", codec="vit", shape=(image_size, image_size, 3), dtype="uint8")
    return TaskSpec(name=name, domain="toy", observation=(image, text) if images else (text,),
                    dataset=DatasetSpec(repo="nobody/toy-dataset", config=name), sample_weight=2.0)


WORDS = "go to the red ball pick up a key open door blue box green put next".split()


def sentence(rng, n: int) -> str:
    """``n`` random words."""
    return " ".join(rng.choice(WORDS, size=n))


def grid_rows(lengths, seed: int = 0) -> list[dict]:
    """Episodes of :func:`grid_task`."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in lengths:
        mission = sentence(rng, 4)
        rows.append({
            "discrete_observations": rng.integers(0, 11, size=(n, 148)).tolist(),
            "text_observations": [mission] * n,
            "discrete_actions": rng.integers(0, 7, size=n).tolist(),
            "rewards": [0.0] * (n - 1) + [1.0],
        })
    return rows


class ToyEnv:
    """A 5-step continuous env for :func:`toy_task` (built lazily so that gymnasium is imported only here)."""

    @staticmethod
    def make(**kwargs):
        import gymnasium as gym

        class Env(gym.Env):
            observation_space = gym.spaces.Dict(
                {"continuous_observations": gym.spaces.Box(-10, 10, (OBS,), np.float32)})
            action_space = gym.spaces.Box(-1, 1, (ACT,), np.float32)

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                self.t = 0
                return self._obs(), {}

            def _obs(self):
                return {"continuous_observations": self.np_random.normal(size=OBS).astype(np.float32)}

            def step(self, action):
                self.t += 1
                return self._obs(), -float(np.abs(action).sum()), False, self.t >= 5, {}

        return Env()


def assert_one_line_error(err: str, prog: str, *needles: str) -> str:
    """stderr holds no traceback and exactly one ``PROG: error: ...`` line, which contains every needle (log
    warnings may come before it); returns that line."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}: ")]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


#: a very small model for command-line runs: 1 layer, H=64, 16 tokens of context, a 300-token vocabulary
CLI_MODEL = {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 16, "window_size": 8,
             "vocab_size": 300}


def train_argv(data, out, *extra) -> list[str]:
    """``jat-train`` arguments for a 4-step run of the :data:`CLI_MODEL` on ``data`` into ``out`` (checkpoints every
    2 steps, all kept), plus ``extra``."""
    argv = ["--data", str(data), "--output-dir", str(out), "--max-steps", "4", "--save-every", "2",
            "--save-total-limit", "0", "--batch-size", "2", "--lr", "1e-3", "--tokenizer", "bpe:300", "--cpu",
            "--mixed-precision", "no", "--num-threads", "1", "--no-progress"]
    for key, value in CLI_MODEL.items():
        argv += ["--model-config", f"{key}={value}"]
    return [*argv, *extra]
