"""Atomic training checkpoints: ``OUT/checkpoint-<step>/``.

A checkpoint holds everything a resumed run needs to continue exactly:

- the model in ``save_pretrained`` form (``config.json`` + ``model.safetensors``, loadable by
  ``JatModel.from_pretrained``) and the tokenizer, if any;
- ``optimizer.pt`` and ``scheduler.pt`` (state dicts);
- ``rank-<r>.pt`` for each rank: its RNG states (python, numpy, torch, cuda) and its data position;
- ``trainer_state.json``: step, world size, and the run's settings; written last.

Everything is written into ``OUT/.tmp-checkpoint-<step>/`` and then renamed, so a process killed while
saving leaves the previous checkpoints intact and never a half-written ``checkpoint-<step>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
from typing import Any

import numpy as np
import torch

PREFIX = "checkpoint-"
TMP_PREFIX = ".tmp-checkpoint-"
STATE = "trainer_state.json"


def checkpoint_dir(output_dir: str, step: int) -> str:
    """``OUT/checkpoint-<step>``."""
    return os.path.join(output_dir, f"{PREFIX}{step}")


def list_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """Complete checkpoints in ``output_dir`` as ``(step, path)``, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    out = []
    for name in os.listdir(output_dir):
        m = re.fullmatch(rf"{PREFIX}(\d+)", name)
        path = os.path.join(output_dir, name)
        if m and os.path.isfile(os.path.join(path, STATE)):
            out.append((int(m.group(1)), path))
    return sorted(out)


def latest_checkpoint(output_dir: str) -> str | None:
    """The complete checkpoint with the highest step, or ``None``."""
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def remove_partial(output_dir: str) -> None:
    """Delete temporary directories left by a process killed while saving."""
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            if name.startswith(TMP_PREFIX):
                shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def rng_state() -> dict[str, Any]:
    """This process's RNG states (python, numpy, torch CPU and, where present, CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states from :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def _quiet_transformers():
    """No "Writing model shards" bar in the middle of the training bar."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def save_checkpoint(
    output_dir: str,
    step: int,
    *,
    accelerator,
    model,
    optimizer,
    scheduler,
    data_state: dict,
    trainer_state: dict,
    tokenizer=None,
    keep: int | None = None,
) -> str:
    """Write ``OUT/checkpoint-<step>/`` atomically (every rank calls this).

    Args:
        output_dir: the run's directory.
        step: the optimizer step just completed.
        accelerator: the run's ``accelerate.Accelerator``.
        model: the (possibly wrapped) model.
        optimizer, scheduler: their state is saved by the main process.
        data_state: this rank's data position (``MultiTaskBatches.state_dict()``).
        trainer_state: JSON-serialisable run state (``step`` is added).
        tokenizer: saved beside the model when given.
        keep: keep only the newest ``keep`` checkpoints (``None``: all).

    Returns:
        The checkpoint's path.
    """
    tmp = os.path.join(output_dir, f"{TMP_PREFIX}{step}")
    final = checkpoint_dir(output_dir, step)
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    accelerator.wait_for_everyone()
    torch.save(
        {"rng": rng_state(), "data": data_state},
        os.path.join(tmp, f"rank-{accelerator.process_index}.pt"),
    )
    if accelerator.is_main_process:
        with _quiet_transformers():
            accelerator.unwrap_model(model).save_pretrained(tmp)  # safetensors
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        torch.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
        torch.save(scheduler.state_dict(), os.path.join(tmp, "scheduler.pt"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state = dict(trainer_state, step=step, world_size=accelerator.num_processes)
        with open(os.path.join(tmp, STATE), "w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(final):  # a stale checkpoint of the same step from an abandoned run
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep is not None:
            for _, old in list_checkpoints(output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: str, *, accelerator, model, optimizer, scheduler) -> tuple[dict, dict | None]:
    """Load a checkpoint into the model, optimizer and scheduler; restore this rank's RNG states.

    Args:
        path: a checkpoint directory.
        accelerator: the run's accelerator.
        model: the (possibly wrapped) model; its weights are replaced.
        optimizer, scheduler: their states are replaced.

    Returns:
        ``(trainer_state, data_state)``; ``data_state`` is ``None`` when the checkpoint was written by a
        different number of processes (the data position of another sharding cannot be reused).
    """
    from safetensors.torch import load_file

    with open(os.path.join(path, STATE)) as f:
        trainer_state = json.load(f)
    weights = load_file(os.path.join(path, "model.safetensors"))
    unwrapped = accelerator.unwrap_model(model)
    missing, unexpected = unwrapped.load_state_dict(weights, strict=False)
    # tied weights may be stored once: anything missing must be tied to something loaded
    missing = [k for k in missing if not _is_tied(unwrapped, k, weights)]
    if missing or unexpected:
        raise ValueError(f"checkpoint {path!r} does not match the model: missing {missing}, unexpected {unexpected}")
    optimizer.load_state_dict(torch.load(os.path.join(path, "optimizer.pt"), weights_only=False))
    scheduler.load_state_dict(torch.load(os.path.join(path, "scheduler.pt"), weights_only=False))
    data_state = None
    rank_file = os.path.join(path, f"rank-{accelerator.process_index}.pt")
    if trainer_state.get("world_size") == accelerator.num_processes and os.path.isfile(rank_file):
        rank_state = torch.load(rank_file, weights_only=False)
        set_rng_state(rank_state["rng"])
        data_state = rank_state["data"]
    return trainer_state, data_state


def _is_tied(model, key: str, loaded: dict) -> bool:
    params = dict(model.named_parameters(remove_duplicate=False))
    target = params.get(key)
    if target is None:
        return False
    return any(params.get(k) is target for k in loaded)
