"""Where a task's episodes are, and opening them: the hub, a mirror or replica of it, or a ``jat-collect`` directory.

:func:`open_episodes` turns a ``--data`` value and a task into an :class:`jat_train.data.sources.EpisodeSource` for
this rank (:func:`open_sources`: every task of a run, before anything else is built, so that missing data is
reported first). The three places, and how to make a replica of the hub repo, are described in
:mod:`jat_train.data`. Local directories are found by :func:`local_path` (the one convention, shared with
``jat-collect``), loaded by :func:`load_local`, and a damaged one is reported naming its damaged file
(:func:`find_damage`). :func:`first_episodes` gives a task's first episodes (:func:`sample_texts` reads their
strings to train a tokenizer; :mod:`jat_train.training.input_stats` their statistics).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from jat_core.specs import TaskSpec

from jat_train.data.sources import (
    HUB,
    SHUFFLE_BUFFER,
    SPLIT,
    DataError,
    EpisodeSource,
    LocalEpisodes,
    StreamEpisodes,
    hub_hint,
    mirror_hint,
)


def hub_repo(data: str) -> tuple[bool, str | None]:
    """Whether ``data`` names the hub path, and the repo id or directory it puts in place of the task's repo.

    ``"hub"``: ``(True, None)`` (each task's own repo); ``"hub:<repo id or directory>"``: ``(True, that)`` (``~``
    expanded); anything else (a ``jat-collect`` directory): ``(False, None)``.

    Raises:
        DataError: ``"hub:"`` with nothing after it.
    """
    if data == HUB:
        return True, None
    if not data.startswith(HUB + ":"):
        return False, None
    repo = data[len(HUB) + 1 :].strip()
    if not repo:
        raise DataError(f"--data {data!r}: expected 'hub', 'hub:<repo id or local directory>' or a directory")
    return True, os.path.expanduser(repo)


def open_episodes(
    spec: TaskSpec,
    data: str,
    *,
    split: str = SPLIT,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    streaming: bool = True,
    shuffle_buffer: int = SHUFFLE_BUFFER,
) -> EpisodeSource:
    """Open one task's episodes for this rank.

    Args:
        spec: the task; its ``dataset`` names the hub repo/config and the local directory name.
        data: ``"hub"`` (the task's hub repo), ``"hub:<repo id or directory>"`` (the same
            ``datasets.load_dataset`` call with that repo id, or a local replica of the repo, in place of the
            task's repo: see :mod:`jat_train.data`), else a local root directory (``DIR/<task>/``, as
            ``jat-collect`` writes it: a ``DatasetDict`` saved with ``save_to_disk``, or a single ``Dataset``).
        split: the split to read.
        rank, world_size: this process's shard.
        seed: shuffling seed.
        streaming: hub data only: stream them (a :class:`StreamEpisodes`) or download the split first (a
            :class:`LocalEpisodes`).
        shuffle_buffer: streamed hub data only: episodes in the shuffle buffer (0: none, exact resume; see
            :class:`StreamEpisodes`).

    Returns:
        An :class:`EpisodeSource`.

    Raises:
        DataError: no such directory or split, an empty split, a damaged local data set (the message names
            the file), or the hub (or the replica) cannot be read (the message says how to get the data offline).
    """
    is_hub, override = hub_repo(data)
    if is_hub:
        if spec.dataset is None:
            raise DataError(f"task {spec.name!r} names no hub data set; {hub_hint([spec.name])}")
        import datasets

        repo, config = override or spec.dataset.repo, spec.dataset.config
        hint = f"{hub_hint([spec.name])}, {mirror_hint(spec)}"
        where = "from the hub" if override is None or not os.path.isdir(override) else "from the local copy"
        if override is not None:
            from jat_core.cli import looks_like_local_path

            if looks_like_local_path(override) and not os.path.isdir(override):
                raise DataError(
                    f"task {spec.name!r}: --data hub:{override}: no such directory (a local copy of the hub "
                    f"repository {spec.dataset.repo!r}: README.md declaring its configs, <config>/<split>-*.parquet "
                    f"shards); {hint}"
                )
        try:  # the one call a hub run makes, whatever the repo and the mode
            loaded = datasets.load_dataset(repo, config, split=split, streaming=streaming)
        except Exception as exc:  # offline, unknown repo/config/split, a replica without that config...
            verb = "stream" if streaming else "load"
            raise DataError(
                f"task {spec.name!r}: could not {verb} {repo!r} (config {config!r}, split {split!r}) {where} "
                f"({type(exc).__name__}: {exc}); {hint}"
            ) from exc
        if streaming:
            return StreamEpisodes(loaded, task=spec.name, rank=rank, world_size=world_size, seed=seed,
                                  shuffle_buffer=shuffle_buffer, hint=hint,
                                  source=f"{repo!r} (config {config!r}, split {split!r})")
        if len(loaded) == 0:
            raise DataError(
                f"task {spec.name!r}: the {split!r} split of {repo!r} (config {config!r}) holds no episode; {hint}"
            )
        return LocalEpisodes(loaded, task=spec.name, rank=rank, world_size=world_size, seed=seed)

    import datasets

    path = local_path(spec, data)
    if not os.path.isdir(path):
        raise DataError(f"task {spec.name!r}: no local data at {path!r}; {hub_hint([spec.name])}")
    loaded = load_local(path, task=spec.name)
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"task {spec.name!r}: {path!r} has splits {sorted(loaded)}, not {split!r}")
        loaded = loaded[split]
    if len(loaded) == 0:
        raise DataError(
            f"task {spec.name!r}: the {split!r} split of {path!r} holds no episode; collect more episodes "
            f"(jat-collect --tasks {spec.name} --episodes N)"
        )
    return LocalEpisodes(loaded, task=spec.name, rank=rank, world_size=world_size, seed=seed)


def local_path(task: TaskSpec, root: str) -> str:
    """Where a task's local data lives under ``root``: ``root/<task>`` (the dataset spec's local name or config;
    the task's name when it names no data set). ``jat-collect`` writes there and training reads from there."""
    return task.dataset.local_path(root) if task.dataset is not None else os.path.join(root, task.name)


def load_local(path: str, *, task: str):
    """``datasets.load_from_disk(path)``, with any failure reported as a :class:`DataError` naming the task and
    the damaged file (found by :func:`find_damage`).

    Returns:
        A ``datasets.DatasetDict`` or ``datasets.Dataset``.
    """
    import datasets

    try:
        return datasets.load_from_disk(path)
    except Exception as exc:  # a truncated arrow file, a broken JSON, an empty split saved without a shard...
        damage = find_damage(path) or f"{type(exc).__name__}: {exc}"
        raise DataError(f"task {task!r}: cannot load the local data set {path!r}: {damage}") from exc


def find_damage(path: str) -> str | None:
    """The first damaged file of a ``save_to_disk`` directory and what is wrong with it, or ``None``.

    Checks ``dataset_dict.json`` (when present), each split's ``state.json`` and ``dataset_info.json`` (JSON),
    that ``state.json`` lists at least one data file, and each arrow file (opened and fully validated).
    """
    import json

    import datasets

    def read_json(file: str) -> tuple[Any, str | None]:
        if not os.path.isfile(file):
            return None, f"{file}: missing"
        try:
            with open(file, encoding="utf-8") as f:
                return json.load(f), None
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            return None, f"{file}: not valid JSON ({type(exc).__name__}: {exc})"

    dirs = [path]
    dict_file = os.path.join(path, "dataset_dict.json")
    if os.path.isfile(dict_file):
        value, problem = read_json(dict_file)
        if problem:
            return problem
        splits = value.get("splits") if isinstance(value, dict) else None
        if not isinstance(splits, list):
            return f"{dict_file}: expected a JSON object with a list of 'splits'"
        dirs = [os.path.join(path, str(name)) for name in splits]
    for directory in dirs:
        state_file = os.path.join(directory, "state.json")
        state, problem = read_json(state_file)
        if problem:
            return problem
        _, problem = read_json(os.path.join(directory, "dataset_info.json"))
        if problem:
            return problem
        files = state.get("_data_files") if isinstance(state, dict) else None
        if not files:
            return (
                f"{state_file}: lists no data file (an empty split saved without a shard, as older jat-collect "
                "runs did with --episodes 1); collect the task again"
            )
        for entry in files:
            file = os.path.join(directory, str(entry.get("filename") if isinstance(entry, dict) else entry))
            try:
                datasets.Dataset.from_file(file, in_memory=False).data.validate(full=True)
            except Exception as exc:
                return f"{file}: damaged ({type(exc).__name__}: {exc})"
    return None


def open_sources(
    tasks: list[TaskSpec],
    data: str,
    *,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    split: str = SPLIT,
    streaming: bool = True,
    shuffle_buffer: int = SHUFFLE_BUFFER,
) -> dict[str, EpisodeSource]:
    """Open every task's episodes for this rank (see :func:`open_episodes`, which takes the same arguments),
    by task name.

    Done before anything else in a run, so that missing data is reported before a model is built.
    """
    return {
        spec.name: open_episodes(spec, data, split=split, rank=rank, world_size=world_size, seed=seed,
                                 streaming=streaming, shuffle_buffer=shuffle_buffer)
        for spec in tasks
    }


def first_episodes(
    spec: TaskSpec, data: str, *, episodes: int, streaming: bool = True
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The ``(episode index, row)`` of a task's first ``episodes`` episodes, as its source gives them (fewer when
    its data set holds fewer: none is given twice).

    Args:
        spec: the task.
        data: ``"hub"``, ``"hub:<repo id or directory>"`` or a local root directory (see :func:`open_episodes`).
        episodes: the most episodes given.
        streaming: hub data only: stream them or read the downloaded split (see :func:`open_episodes`).
    """
    source = open_episodes(spec, data, streaming=streaming)
    for _ in range(episodes):
        index, row = source.next_episode()
        if getattr(source, "epoch", 0) > 0:  # all of a small data set read: this is its first episode again
            return
        yield index, row


def sample_texts(tasks: list[TaskSpec], data: str, *, episodes: int = 200, streaming: bool = True) -> list[str]:
    """Distinct strings of the tasks' string fields in their first ``episodes`` episodes (to train a tokenizer).

    Args:
        tasks: task specs; only their ``string`` fields are read.
        data: ``"hub"``, ``"hub:<repo id or directory>"`` or a local root directory (see :func:`open_episodes`).
        episodes: episodes read per task.
        streaming: hub data only: stream them or read the downloaded split (see :func:`open_episodes`).

    Returns:
        The strings, in order of first appearance.
    """
    seen: dict[str, None] = {}
    for spec in tasks:
        names = [f.name for f in spec.fields if f.dtype == "string"]
        if not names:
            continue
        for _, row in first_episodes(spec, data, episodes=episodes, streaming=streaming):
            for name in names:
                for text in np.asarray(row.get(name, []), dtype=object).reshape(-1):
                    seen.setdefault(str(text), None)
    return list(seen)
