"""Atomic training checkpoints: ``OUT/checkpoint-<step>/``.

A checkpoint holds everything a resumed run needs to continue exactly:

- the model in ``save_pretrained`` form (``config.json`` + ``model.safetensors``, loadable by
  ``JatModel.from_pretrained``) and the tokenizer, if any;
- ``optimizer.pt`` and ``scheduler.pt`` (state dicts);
- ``rank-<r>.pt`` for each rank: its RNG states (python, numpy, torch, cuda) and its data position;
- ``trainer_state.json``: step, world size, and the run's settings; written last.

Everything is written into ``OUT/.tmp-checkpoint-<step>/`` and then renamed, so a process killed while
saving leaves the previous checkpoints intact and never a half-written ``checkpoint-<step>``; a save that fails
(a full disk) removes its temporary directory and raises an ``OSError`` naming the file and the cause.

Resuming (:func:`resume_checkpoint`) takes the newest checkpoint that :func:`checkpoint_problem` finds intact
(``trainer_state.json`` parses and matches its directory, ``model.safetensors`` has a readable header that
covers the file, the ``.pt`` files are complete zip archives whose pickle calls nothing but what
``torch.load(weights_only=True)`` allows, the JSON files parse). A damaged newer one is skipped with a warning
naming the damaged file; when every checkpoint is damaged the run stops with a :class:`CheckpointError` naming
them, instead of training from scratch.

Nothing in a checkpoint runs as code: a checkpoint folder may come from someone else (a shared disk, a
downloaded run). The ``.pt`` files are read with ``torch.load(weights_only=True)``, which rebuilds tensors and
plain Python values only, plus the numpy arrays of the RNG states (:data:`jat_train.training.torchfiles.SAFE_GLOBALS`,
the one addition to its allowlist); a ``.pt`` file whose pickle names any other function or class is refused,
naming it, before anything is loaded. Every checkpoint this module has written loads that way: the format is
unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from jat_train.files import fsync_file, writing
from jat_train.training.torchfiles import load_torch_file, save_torch, unsafe_pickle

PREFIX = "checkpoint-"
TMP_PREFIX = ".tmp-checkpoint-"
STATE = "trainer_state.json"
WEIGHTS = "model.safetensors"
#: ``torch.save`` files every checkpoint holds (besides ``rank-<r>.pt`` for each of its ranks).
TORCH_FILES = ("optimizer.pt", "scheduler.pt")


class CheckpointError(ValueError):
    """A checkpoint is damaged or does not fit the run; the message names the file."""


def checkpoint_dir(output_dir: str, step: int) -> str:
    """``OUT/checkpoint-<step>``."""
    return os.path.join(output_dir, f"{PREFIX}{step}")


def list_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """Complete checkpoints in ``output_dir`` as ``(step, path)``, oldest first."""
    return [(step, path) for step, path in checkpoint_dirs(output_dir) if os.path.isfile(os.path.join(path, STATE))]


def latest_checkpoint(output_dir: str) -> str | None:
    """The complete checkpoint with the highest step, or ``None`` (not checked for damage: see
    :func:`resume_checkpoint`)."""
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def checkpoint_dirs(output_dir: str) -> list[tuple[int, str]]:
    """Every ``checkpoint-<step>`` directory in ``output_dir`` (complete or not) as ``(step, path)``, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    out = []
    for name in os.listdir(output_dir):
        m = re.fullmatch(rf"{PREFIX}(\d+)", name)
        path = os.path.join(output_dir, name)
        if m and os.path.isdir(path):
            out.append((int(m.group(1)), path))
    return sorted(out)


def _json_problem(path: str) -> tuple[Any, str | None]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), None
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        return None, f"{path}: not valid JSON ({type(exc).__name__}: {exc})"


def checkpoint_problem(path: str) -> str | None:
    """What is damaged in the checkpoint directory ``path`` (naming the file), or ``None`` if it looks intact.

    Checks what can be checked without loading the tensors: ``trainer_state.json`` is a JSON object whose
    integer ``step`` matches the directory name; ``config.json`` and ``tokenizer.json`` (when present) parse;
    ``model.safetensors`` opens and its header covers the file (safetensors has no checksum: flipped bytes in
    the tensor data go unnoticed); ``optimizer.pt``, ``scheduler.pt`` and ``rank-<r>.pt`` for each of its
    ``world_size`` ranks are zip archives (``torch.save``'s format) whose members pass their CRC check and
    whose pickle calls nothing outside ``torch.load(weights_only=True)``'s allowlist and
    :data:`jat_train.training.torchfiles.SAFE_GLOBALS` (read without unpickling: nothing in it runs).
    """
    from safetensors import safe_open

    state_path = os.path.join(path, STATE)
    if not os.path.isfile(state_path):
        return f"{state_path}: missing (the checkpoint is incomplete)"
    state, problem = _json_problem(state_path)
    if problem:
        return problem
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or isinstance(state["step"], bool):
        return f"{state_path}: expected a JSON object with an integer 'step'"
    m = re.fullmatch(rf"{PREFIX}(\d+)", os.path.basename(os.path.normpath(path)))
    if m and int(m.group(1)) != state["step"]:
        return f"{state_path}: step {state['step']}, but the directory is step {m.group(1)}"
    for name in ("config.json", "tokenizer.json"):
        file = os.path.join(path, name)
        if name == "config.json" or os.path.exists(file):
            _, problem = _json_problem(file)
            if problem:
                return problem
    weights = os.path.join(path, WEIGHTS)
    try:
        with safe_open(weights, framework="pt") as f:
            f.keys()
    except Exception as exc:  # missing, truncated, garbage header: safetensors says which
        return f"{weights}: unreadable ({type(exc).__name__}: {exc})"
    world_size = state.get("world_size", 1)
    ranks = [f"rank-{r}.pt" for r in range(world_size if isinstance(world_size, int) and world_size > 0 else 1)]
    for name in (*TORCH_FILES, *ranks):
        file = os.path.join(path, name)
        try:
            with zipfile.ZipFile(file) as archive:
                bad = archive.testzip()  # every member's CRC
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            what = "missing" if not os.path.exists(file) else f"damaged ({type(exc).__name__}: {exc})"
            return f"{file}: {what}"
        if bad is not None:
            return f"{file}: damaged (bad CRC in its member {bad!r})"
        problem = unsafe_pickle(file)
        if problem:
            return problem
    return None


def resume_checkpoint(output_dir: str, warn: Callable[[str], Any] | None = None) -> str | None:
    """The checkpoint ``--resume`` continues from: the newest one without a :func:`checkpoint_problem`.

    Args:
        output_dir: the run's directory.
        warn: called with one message per damaged checkpoint skipped (e.g. ``logger.warning``).

    Returns:
        Its path, or ``None`` when ``output_dir`` holds no checkpoint at all.

    Raises:
        CheckpointError: checkpoints exist but every one is damaged (the message names the damaged files);
            training from scratch over them would be silent data loss.
    """
    damaged: list[str] = []
    for _, path in reversed(checkpoint_dirs(output_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        damaged.append(problem)
        if warn is not None:
            warn(f"--resume: checkpoint {path} is damaged ({problem}); falling back to the previous one")
    if damaged:
        raise CheckpointError(
            f"--resume: no intact checkpoint in {output_dir!r}: {'; '.join(damaged)}; remove or repair the damaged "
            "checkpoint(s), or start a new run in another --output-dir"
        )
    return None


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

    Raises:
        OSError: a file could not be written (a full disk): naming it and the cause; the temporary directory is
            removed and the earlier checkpoints are untouched.
    """
    tmp = os.path.join(output_dir, f"{TMP_PREFIX}{step}")
    final = checkpoint_dir(output_dir, step)
    note = f"checkpoint {step} was not written, the ones before it are intact"
    try:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
        accelerator.wait_for_everyone()
        rank_file = os.path.join(tmp, f"rank-{accelerator.process_index}.pt")
        save_torch({"rng": rng_state(), "data": data_state}, rank_file, note)
        if accelerator.is_main_process:
            with writing(tmp, note), _quiet_transformers():
                accelerator.unwrap_model(model).save_pretrained(tmp)  # safetensors
                if tokenizer is not None:
                    tokenizer.save_pretrained(tmp)
            save_torch(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"), note)
            save_torch(scheduler.state_dict(), os.path.join(tmp, "scheduler.pt"), note)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            for name in os.listdir(tmp):  # on the disk before the checkpoint counts as complete
                with writing(os.path.join(tmp, name), note):
                    fsync_file(os.path.join(tmp, name))
            state = dict(trainer_state, step=step, world_size=accelerator.num_processes)
            with writing(os.path.join(tmp, STATE), note), open(os.path.join(tmp, STATE), "w") as f:
                json.dump(state, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        if accelerator.is_main_process:  # a full disk: give back the space the partial checkpoint took
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if accelerator.is_main_process:
        if os.path.exists(final):  # a stale checkpoint of the same step from an abandoned run
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep is not None:
            for _, old in list_checkpoints(output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _read(path: str, load: Callable[[str], Any]) -> Any:
    """``load(path)``; any failure becomes a :class:`CheckpointError` naming the file."""
    try:
        return load(path)
    except Exception as exc:
        raise CheckpointError(f"checkpoint file {path!r} cannot be read ({type(exc).__name__}: {exc})") from exc


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

    Raises:
        CheckpointError: a file cannot be read (named), or the weights do not match the model.
    """
    from safetensors.torch import load_file

    def load_json(file: str) -> Any:
        with open(file, encoding="utf-8") as f:
            return json.load(f)

    trainer_state = _read(os.path.join(path, STATE), load_json)
    weights = _read(os.path.join(path, WEIGHTS), load_file)
    unwrapped = accelerator.unwrap_model(model)
    missing, unexpected = unwrapped.load_state_dict(weights, strict=False)
    # tied weights may be stored once: anything missing must be tied to something loaded
    missing = [k for k in missing if not _is_tied(unwrapped, k, weights)]
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path!r} does not match the model: missing {missing}, unexpected {unexpected}"
        )
    optimizer_file, scheduler_file = (os.path.join(path, name) for name in TORCH_FILES)
    _read(optimizer_file, lambda file: optimizer.load_state_dict(load_torch_file(file)))
    _read(scheduler_file, lambda file: scheduler.load_state_dict(load_torch_file(file)))
    data_state = None
    rank_file = os.path.join(path, f"rank-{accelerator.process_index}.pt")
    if trainer_state.get("world_size") == accelerator.num_processes and os.path.isfile(rank_file):
        rank_state = _read(rank_file, load_torch_file)
        set_rng_state(rank_state["rng"])
        data_state = rank_state["data"]
    return trainer_state, data_state


def _is_tied(model, key: str, loaded: dict) -> bool:
    params = dict(model.named_parameters(remove_duplicate=False))
    target = params.get(key)
    if target is None:
        return False
    return any(params.get(k) is target for k in loaded)
