"""Saving collected data sets to disk, atomically, and summing up what was saved.

A task's data set goes to ``OUT/<task>/`` (``datasets.DatasetDict.save_to_disk``, splits ``train`` and
``test``). It is first written to a temporary directory beside ``OUT/<task>/``, loaded back and checked, and only
then renamed over the old one: a failed or interrupted collection leaves the previous data (and no temporary
directory); what a killed one leaves is undone by the next ``jat-collect`` (:func:`remove_partial`). An empty
split (``test`` with one episode) is written as one empty, typed shard, so the data set loads, and trains.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from jat_core.specs import TaskSpec

from jat_train.collection.recording import PolicyFactory, collect
from jat_train.data import REWARDS, local_path
from jat_train.files import writing


@dataclass(frozen=True)
class CollectSummary:
    """What one task's collection produced: where, how many episodes, their mean return and normalised score."""

    task: str
    path: str | None
    train_episodes: int
    test_episodes: int
    mean_return: float
    normalized: float | None

    def line(self) -> str:
        """One human-readable line."""
        norm = f"{self.normalized:.3f}" if self.normalized is not None else "n/a (no reference scores)"
        where = f" -> {self.path}" if self.path else ""
        return (
            f"{self.task}: {self.train_episodes} train + {self.test_episodes} test episodes{where}; "
            f"mean return {self.mean_return:.3f}, expert-normalised {norm}"
        )


def summarize(task: TaskSpec, data, path: str | None = None) -> CollectSummary:
    """Mean episode return (over both splits) and its expert-normalised score."""
    returns = [float(np.sum(r)) for split in data.values() for r in split[REWARDS]]
    mean = float(np.mean(returns)) if returns else float("nan")
    return CollectSummary(
        task=task.name,
        path=path,
        train_episodes=len(data["train"]),
        test_episodes=len(data["test"]),
        mean_return=mean,
        normalized=task.scores.normalize(mean) if task.scores is not None else None,
    )


def collect_to_disk(
    task: TaskSpec,
    episodes: int,
    out: str,
    seed: int = 0,
    policy_factory: PolicyFactory | None = None,
    **kwargs: Any,
) -> CollectSummary:
    """:func:`jat_train.collection.recording.collect`, then save to ``out/<task>/``, replacing what was there.

    Atomic: the data set is written to ``out/.tmp-<task>-<random>/``, loaded back and checked (splits, rows,
    features), and only then moved in place of the old one. A collection that fails or is interrupted leaves
    the previous data set as it was (and no temporary directory). An empty split (``test`` with one episode)
    is written as one empty, typed shard, so the data set loads.

    Returns:
        The summary of what was written.

    Raises:
        UserError: ``out`` or ``out/<task>`` exists as a file.
        ValueError: see :func:`jat_train.collection.recording.collect`.
    """
    check_destination(task, out)
    data = collect(task, episodes, seed, policy_factory, **kwargs)
    return summarize(task, data, write_data(task, data, out))


def check_destination(task: TaskSpec, out: str) -> None:
    """Refuse an ``out`` (or ``out/<task>``) that is a file, before anything is collected.

    Raises:
        UserError: naming the option and the file.
    """
    from jat_core.cli import UserError, check_output_dir

    path = local_path(task, out)
    check_output_dir(out, "--out")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out: the data set of task {task.name!r} would replace the file {path!r}")


def write_data(task: TaskSpec, data, out: str) -> str:
    """Save a task's ``DatasetDict`` to ``out/<task>/`` atomically (see :func:`collect_to_disk`); returns the path.

    Raises:
        UserError: ``out`` or ``out/<task>`` exists as a file.
        OSError: the data set could not be written (a full disk) or does not load back as it was: naming the
            path and the cause; the previous data set is untouched.
    """
    check_destination(task, out)
    path = local_path(task, out)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(path)}-", dir=parent)
    try:
        with writing(path, f"the data set of task {task.name!r} there is as it was"), _quiet_datasets():
            # an empty split saved with 0 shards cannot be loaded back: give it one (empty) shard
            data.save_to_disk(tmp, num_shards={name: 1 for name, split in data.items() if len(split) == 0})
            _check_written(task, tmp, data)
        _replace_dir(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return path


@contextlib.contextmanager
def _quiet_datasets():
    """Silence ``datasets``' own progress bars (``jat-collect`` shows one bar per task)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _check_written(task: TaskSpec, path: str, data) -> None:
    """Load the data set written to ``path`` back; it must hold the same splits, rows and features."""
    import datasets

    try:
        loaded = datasets.load_from_disk(path)
    except Exception as exc:
        raise OSError(f"task {task.name!r}: the data set written to {path!r} does not load back ({exc})") from exc
    for name, split in data.items():
        if name not in loaded or len(loaded[name]) != len(split) or loaded[name].features != split.features:
            raise OSError(f"task {task.name!r}: the {name!r} split written to {path!r} does not match what was collected")


def remove_partial(out: str) -> None:
    """Undo what a killed ``jat-collect`` left in ``out``: a data set set aside by :func:`_replace_dir`
    (``.old-<task>-*``) whose replacement never got in place is put back, any other one and the temporary
    directories and files (``.tmp-*``) are removed. Only for a process that holds ``out``'s run lock
    (:mod:`jat_train.run_lock`): a live writer's temporaries look the same."""
    if not os.path.isdir(out):
        return
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name)
        old = re.fullmatch(r"\.old-(.+)-[a-z0-9_]{8}", name)  # tempfile.mkdtemp's 8 random characters
        if old and os.path.isdir(path) and not os.path.exists(os.path.join(out, old.group(1))):
            os.replace(path, os.path.join(out, old.group(1)))
        elif old or name.startswith(".tmp-"):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)


def _replace_dir(new: str, path: str) -> None:
    """Move the directory ``new`` to ``path``; an existing ``path`` is set aside first and deleted only once
    ``new`` is in place (restored if the move fails), so its data are never lost."""
    if not os.path.exists(path):
        os.replace(new, path)
        return
    parent = os.path.dirname(os.path.abspath(path))
    old = tempfile.mkdtemp(prefix=f".old-{os.path.basename(path)}-", dir=parent)
    os.rmdir(old)
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
