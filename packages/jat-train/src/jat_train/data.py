"""Training data: episodes from the hub or a local directory, cut into windows, batched one task at a time.

The pipeline, top to bottom:

1. :func:`open_episodes` opens one task's episodes (one row = one episode) for this rank, from one of:

   - the hub, ``data="hub"``: ``datasets.load_dataset(repo, config, split=..., streaming=...)`` with the
     task's ``spec.dataset`` repo (``jat-project/jat-dataset``) and config (one per task);
   - a mirror or a local replica of that repository, ``data="hub:<repo id or directory>"``: the very same call
     with that repo id or directory in place of the task's repo. A replica is a directory laid out as the hub
     repo is: a ``README.md`` whose YAML front matter declares the configs (``configs: - config_name: X
     data_files: - split: train path: X/train-*``) and parquet shards ``X/train-0000N-of-0000M.parquet``. It
     may hold only the configs of the tasks trained on; e.g., on a machine with hub access,
     ``hf download jat-project/jat-dataset --repo-type dataset --include README.md --include 'CONFIG/*'
     --local-dir DIR``, then train anywhere with ``--data hub:DIR``;
   - a local directory written by ``jat-collect`` (``save_to_disk``), ``data=DIR``.

   Hub data stream by default (``streaming=True``): a :class:`StreamEpisodes` (the rows through a shuffle
   buffer of ``shuffle_buffer`` episodes, split across ranks with ``split_dataset_by_node``). Without streaming
   (``--no-hub-streaming``) the config's split is downloaded (or read from the replica) into the ``datasets``
   cache as a map-style data set and read like local data: a :class:`LocalEpisodes` (reshuffled each epoch,
   every ``world_size``-th episode for each rank; its RL windows then drawn by
   :class:`jat_train.windows.ShuffledWindows`).
2. :class:`TaskWindows` checks each episode against its task's spec (a mismatch names task, episode and field),
   shifts the rewards so that observation ``t`` carries the reward received before it (``[0] + r[:-1]``), and
   cuts it into windows of ``context`` timesteps, keeping every piece (the last one is shorter). Text tasks are
   tokenized with the processor's tokenizer and cut into pieces of ``context`` tokens the same way.
3. :class:`MultiTaskBatches` draws a task by sample weight (a seeded generator shared by every rank, so all
   ranks work on the same task at each step) and stacks ``batch_size`` windows of that task into a
   :class:`Batch`: padded to the longest window, with ``attention_mask`` and a per-step ``loss_weight``, turned
   into model tensors by the processor (which knows the columns; this module names none).

Every stage has a ``state_dict()``/``load_state_dict()``: the data position saved in checkpoints, so that a
resumed run sees exactly the batches an uninterrupted run would have seen (streamed hub data through a shuffle
buffer: exactly from the next epoch on, see :class:`StreamEpisodes`).
"""

from __future__ import annotations

import copy
import inspect
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from jat_core.codec import SEQUENCE
from jat_core.specs import FieldSpec, TaskSpec, check_field_value

#: The data-set column holding per-step rewards (as received after each action).
REWARDS = "rewards"
SPLIT = "train"
#: ``data`` value (and prefix, ``hub:<repo id or directory>``) of the hub path.
HUB = "hub"
#: Episodes in a streamed task's shuffle buffer (an episode of image observations can be megabytes, and each
#: task of each rank has its own buffer).
SHUFFLE_BUFFER = 16


class DataError(ValueError):
    """Training data is missing, unreachable or does not match its task's spec."""


def hub_hint(tasks: list[str]) -> str:
    """How to get the data without the hub: collect it locally and train from the directory."""
    names = ",".join(tasks)
    return (
        f"collect the episodes locally with `jat-collect --tasks {names} --out DIR` "
        f"and train from them with `--data DIR`"
    )


def mirror_hint(spec: TaskSpec) -> str:
    """How to train from a copy of the task's hub repository (made where the hub is reachable)."""
    repo = spec.dataset.repo if spec.dataset is not None else "REPO"
    config = spec.dataset.config if spec.dataset is not None else spec.name
    return (
        f"or copy its hub data where the hub is reachable (`hf download {repo} --repo-type dataset --include "
        f"README.md --include '{config}/*' --local-dir DIR`) and train from the copy with `--data hub:DIR`"
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


# -- 1. episode sources --------------------------------------------------------------------------------------


class EpisodeSource(Protocol):
    """Where one task's episodes come from, for one rank. Endless: epochs follow each other."""

    def next_episode(self) -> tuple[int, dict[str, Any]]:
        """The next ``(episode index, row)``; a row maps column names to per-episode values."""

    def state_dict(self) -> dict:
        """The position in the stream (JSON-serialisable)."""

    def load_state_dict(self, state: dict) -> None:
        """Go back to a position returned by :meth:`state_dict`."""


def task_seed(seed: int, task: str) -> list[int]:
    """Seed of a task's shuffles: the run's seed and a stable hash of the task name."""
    return [seed, zlib.crc32(task.encode())]


class LocalEpisodes:
    """Episodes of a map-style ``datasets.Dataset``, reshuffled each epoch.

    The shuffled order of an epoch is the same on every rank; rank ``r`` reads positions ``r, r + world_size,
    ...`` of it (its shard). With fewer episodes than ranks, rank ``r`` reads episode ``r % n``.

    Args:
        dataset: the episodes (one row per episode).
        task: task name (seeds the shuffling, names errors).
        rank, world_size: this process's shard.
        seed: base seed of the shuffling.
    """

    def __init__(self, dataset, *, task: str, rank: int = 0, world_size: int = 1, seed: int = 0):
        if len(dataset) == 0:
            raise DataError(f"task {task!r}: the data set holds no episode")
        self.dataset = dataset.with_format("numpy")
        self.task, self.rank, self.world_size, self.seed = task, rank, world_size, seed
        self.epoch, self.cursor = 0, 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        n = len(self.dataset)
        perm = np.random.default_rng([*task_seed(self.seed, self.task), self.epoch]).permutation(n)
        shard = perm[self.rank :: self.world_size]
        return shard if len(shard) else perm[[self.rank % n]]

    def next_episode(self) -> tuple[int, dict[str, Any]]:
        """The next episode of this rank's shard, ``(row index, row)``."""
        if self.cursor >= len(self._order):
            self.epoch, self.cursor = self.epoch + 1, 0
            self._order = self._epoch_order()
        index = int(self._order[self.cursor])
        self.cursor += 1
        return index, self.dataset[index]

    def state_dict(self) -> dict:
        """``{"epoch", "cursor"}``."""
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        """Restore a position."""
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._order = self._epoch_order()


class StreamEpisodes:
    """Episodes of a ``datasets.IterableDataset`` (hub streaming), this rank's part of it, shuffled.

    The stream goes through a shuffle buffer of ``shuffle_buffer`` episodes
    (``IterableDataset.shuffle(generator=..., buffer_size=shuffle_buffer)``, seeded by the run's seed and the task
    name, the same on every rank), which also shuffles the order of the shards. The buffer is filled from one shard
    at a time (``max_buffer_input_shards=1`` where ``datasets`` has it: its default interleaves up to 10 shards,
    each with a reader thread and a connection, for every task, and sleeps 5 s each time they run out). The
    stream is then split across ranks with ``datasets.distributed.split_dataset_by_node`` (disjoint parts: whole
    shards when their number divides ``world_size``, else every ``world_size``-th row), and restarted with
    ``set_epoch`` when exhausted (a new shard order and new buffer draws each epoch). Its position is the data
    set's own ``state_dict``.

    The rows are read with ``IterableDataset.iter(batch_size=1)``, not ``iter(dataset)``: inside a
    ``torch.utils.data.DataLoader`` worker (``jat-train --num-workers``) the latter would give each worker only
    its share of the shards (and its own shuffle seed), while every worker of :class:`jat_train.loader.BatchLoader`
    must walk the whole sequence of this rank, the same as in the training process.

    Resuming (``load_state_dict``): ``datasets`` saves how far the stream was read, not the episodes waiting in
    the shuffle buffer ("examples from shuffle buffers are lost when resuming and the buffers are refilled with
    new data", ``IterableDataset.state_dict``), and its buffer restarts its random draws. So, with a buffer of
    more than one episode, the rest of the epoch being read at the checkpoint is not the one an uninterrupted
    run reads: checked with datasets 5.2 (``tests/train/test_hub_replica.py``), up to ``shuffle_buffer``
    episodes of that epoch are skipped and up to ``shuffle_buffer`` come a second time, the others in another
    order, and the episode being cut into windows at the checkpoint may be replaced by another one (whose first
    windows are then passed over). Every later epoch is exactly the uninterrupted run's. With
    ``shuffle_buffer=0`` (no buffer: the shards in file order, then a new shard order each epoch) or ``1``
    (a new shard order each epoch, rows in file order within a shard), resuming is exact.

    Args:
        dataset: the streamed episodes.
        task: task name (names errors, seeds the shuffle buffer).
        rank, world_size: this process's part.
        seed: base seed of the shuffle buffer.
        shuffle_buffer: episodes in the shuffle buffer (0: none).
        hint: how to get the data another way, appended to errors (default: :func:`hub_hint`).
    """

    def __init__(
        self,
        dataset,
        *,
        task: str,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle_buffer: int = 0,
        hint: str | None = None,
    ):
        from datasets.distributed import split_dataset_by_node

        if shuffle_buffer < 0:
            raise ValueError(f"task {task!r}: shuffle_buffer must be >= 0, got {shuffle_buffer}")
        if shuffle_buffer:
            generator = np.random.default_rng(task_seed(seed, task))
            one_shard = {}  # datasets >= 4.x: fill the buffer from one shard at a time (see the docstring)
            if "max_buffer_input_shards" in inspect.signature(dataset.shuffle).parameters:
                one_shard["max_buffer_input_shards"] = 1
            dataset = dataset.shuffle(generator=generator, buffer_size=shuffle_buffer, **one_shard)
        if world_size > 1:
            dataset = split_dataset_by_node(dataset, rank=rank, world_size=world_size)
        self.dataset = dataset.with_format("numpy")
        self.task, self.shuffle_buffer = task, shuffle_buffer
        self.hint = hint if hint is not None else hub_hint([task])
        self.epoch, self.count = 0, 0  # count: episodes read in this epoch
        self._it: Iterator | None = None

    def next_episode(self) -> tuple[int, dict[str, Any]]:
        """The next streamed episode, ``(index within this rank's epoch, row)``.

        Raises:
            DataError: the stream holds no episode for this rank, or reading it failed (the connection, a damaged
                shard): naming the task and how to get the data another way.
        """
        for _ in range(2):
            try:
                if self._it is None:
                    self._it = self.dataset.iter(batch_size=1)
                row = {name: values[0] for name, values in next(self._it).items()}
            except StopIteration:
                if self.count == 0:
                    raise DataError(
                        f"task {self.task!r}: the stream holds no episode for this rank; {self.hint}"
                    ) from None
                self.epoch, self.count, self._it = self.epoch + 1, 0, None
                self.dataset.set_epoch(self.epoch)
                continue
            except Exception as exc:  # a dropped connection, a damaged parquet shard, an undecodable image...
                self._it = None
                raise DataError(
                    f"task {self.task!r}: reading its streamed episodes failed after episode {self.count} of epoch "
                    f"{self.epoch} ({type(exc).__name__}: {exc}); {self.hint}"
                ) from exc
            self.count += 1
            return self.count - 1, row
        raise AssertionError("unreachable")

    def state_dict(self) -> dict:
        """``{"epoch", "count", "dataset"}`` (the data set's own position; see the class docstring for what it
        restores with a shuffle buffer)."""
        return {"epoch": self.epoch, "count": self.count, "dataset": copy.deepcopy(self.dataset.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        """Restore a position."""
        self.epoch, self.count = int(state["epoch"]), int(state["count"])
        self.dataset.set_epoch(self.epoch)
        self.dataset.load_state_dict(copy.deepcopy(state["dataset"]))
        self._it = None


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
            task's repo: see the module docstring), else a local root directory (``DIR/<task>/``, as
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
                                  shuffle_buffer=shuffle_buffer, hint=hint)
        if len(loaded) == 0:
            raise DataError(
                f"task {spec.name!r}: the {split!r} split of {repo!r} (config {config!r}) holds no episode; {hint}"
            )
        return LocalEpisodes(loaded, task=spec.name, rank=rank, world_size=world_size, seed=seed)

    import datasets

    path = spec.dataset.local_path(data) if spec.dataset is not None else os.path.join(data, spec.name)
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


# -- 2. episodes into windows -------------------------------------------------------------------------------


def check_episode(spec: TaskSpec, index: int, row: dict[str, Any]) -> dict[str, np.ndarray]:
    """Check one RL episode against its spec and return its fields and shifted rewards as arrays.

    Args:
        spec: the task.
        index: the episode's index (for messages).
        row: the data-set row: one column per spec field plus ``rewards``, each with one value per step.

    Returns:
        ``{field name: (N, *shape) array, "rewards": (N,) float32}`` where ``rewards[t]`` is the reward
        received before step ``t`` (``[0] + rewards[:-1]``).

    Raises:
        DataError: a missing column, or a field whose shape, dtype or range does not match the spec (naming
            the task, the episode index and the field, the expected and the actual value).
    """
    where = f"task {spec.name!r} episode {index}"
    if REWARDS not in row:
        raise DataError(f"{where}: no {REWARDS!r} column (columns: {sorted(row)})")
    rewards = np.asarray(row[REWARDS], dtype=np.float32)
    if rewards.ndim != 1:
        raise DataError(f"{where} field {REWARDS!r}: expected shape (N,), got {rewards.shape}")
    n = len(rewards)
    if n == 0:
        return {}
    out = {REWARDS: np.concatenate([np.zeros(1, np.float32), rewards[:-1]])}
    for f in spec.fields:
        if f.name not in row:
            raise DataError(f"{where}: no column for field {f.name!r} (columns: {sorted(row)})")
        value = _as_array(f, row[f.name])
        try:
            check_field_value(f, value, task=spec.name, batch=(n,))
        except ValueError as exc:  # its message starts with the task; add the episode
            raise DataError(f"{where} {str(exc).replace(f'task {spec.name!r} ', '', 1)}") from None
        out[f.name] = value
    return out


def _as_array(spec_field: FieldSpec, value: Any) -> np.ndarray:
    if spec_field.dtype == "string":
        return np.asarray(value, dtype=object)
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    try:  # ragged sequences come as object arrays of arrays
        return np.stack([np.asarray(v) for v in value]) if len(value) else np.asarray(value)
    except ValueError:
        return np.asarray(value, dtype=object)


@dataclass
class Window:
    """A piece of an episode (or of a tokenized sample).

    Attributes:
        steps: per-step arrays, ``{field name: (t, ...)}`` (RL fields and ``rewards``; the token ids of a text
            field), all of the same length ``t``.
        extras: per-sample values that every piece of the sample carries (a caption's prepared image).
    """

    steps: dict[str, np.ndarray]
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.steps.values()))) if self.steps else 0


def tokenize_sample(spec: TaskSpec, index: int, row: dict[str, Any], processor: Any) -> Window:
    """Turn one sample of a text task into a whole (uncut) :class:`Window`.

    The string field is tokenized in full with the processor's tokenizer (its ids are the steps, cut later);
    every other field (an image) is prepared once by its codec and rides along with each piece.

    Args:
        spec: a task without actions; its fields are token streams in sequence order.
        index: the sample's index (for messages).
        row: the data-set row.
        processor: a ``JatProcessor`` (its tokenizer and codecs).

    Returns:
        ``Window(steps={text field: (L,) int64 ids}, extras={other field: prepared tensor (1, ...)})``.

    Raises:
        DataError: a missing field, a string field holding no string, not exactly one string field.
    """
    where = f"task {spec.name!r} episode {index}"
    steps, extras = {}, {}
    for f in spec.observation:
        if f.name not in row:
            raise DataError(f"{where}: no column for field {f.name!r} (columns: {sorted(row)})")
        value = row[f.name]
        if f.dtype == "string":
            if not isinstance(value, str):
                raise DataError(f"{where} field {f.name!r}: expected a str, got {type(value).__name__}")
            steps[f.name] = np.asarray(processor.tokenizer(value)["input_ids"], dtype=np.int64).reshape(-1)
        else:
            extras[f.name] = processor.codec(f.codec).prepare([np.asarray(value)], role=SEQUENCE)
    if len(steps) != 1:
        raise DataError(f"task {spec.name!r}: a task without actions needs exactly one string field, got {list(steps)}")
    return Window(steps, extras)


class TaskWindows:
    """One task's windows, in order: each episode cut into pieces of at most ``context`` steps (or tokens).

    RL episodes are checked and reward-shifted by :func:`check_episode`; text samples are tokenized by
    :func:`tokenize_sample`, and their window shrinks by the tokens of the sample's other fields (image
    patches), so that a piece fills the model's context. Nothing is dropped: an episode of ``N`` steps gives
    ``ceil(N / context)`` windows. Empty episodes are skipped (as the reference does).

    Args:
        spec: the task.
        source: its episodes.
        context: window length (timesteps for RL tasks, tokens for text tasks).
        processor: tokenizes and prepares text samples (text tasks only).
    """

    def __init__(self, spec: TaskSpec, source: EpisodeSource, context: int, processor: Any = None):
        if context <= 0:
            raise ValueError(f"task {spec.name!r}: context must be positive, got {context}")
        self.spec, self.source, self.context, self.processor = spec, source, context, processor
        self._episode: Window | None = None
        self._size = context  # steps per piece of the current episode
        self._source_state = source.state_dict()  # position before the current episode
        self._next = 0  # index of the next window of the current episode

    def _load_next_episode(self) -> None:
        for _ in range(100_000):
            self._source_state = self.source.state_dict()
            index, row = self.source.next_episode()
            episode = self._prepare(index, row)
            if len(episode):
                self._episode, self._next = episode, 0
                self._size = self.context - self._extra_tokens(episode)
                if self._size <= 0:
                    raise DataError(f"task {self.spec.name!r}: episode {index} leaves no room for its tokens in "
                                    f"a context of {self.context}")
                return
        raise DataError(f"task {self.spec.name!r}: 100000 empty episodes in a row")

    def _prepare(self, index: int, row: dict[str, Any]) -> Window:
        if self.spec.is_rl:
            return Window(check_episode(self.spec, index, row))
        if self.processor is None:
            raise ValueError(f"task {self.spec.name!r}: text tasks need a processor to tokenize them")
        return tokenize_sample(self.spec, index, row, self.processor)

    def _extra_tokens(self, episode: Window) -> int:
        """Tokens the per-sample fields take in the sequence (what their codecs encode them into)."""
        if not episode.extras:
            return 0
        fields = {f.name: f for f in self.spec.observation}
        with torch.no_grad():
            return sum(
                self.processor.codec(fields[name].codec).encode(value, role=SEQUENCE).shape[1]
                for name, value in episode.extras.items()
            )

    def next_window(self) -> Window:
        """The next window, with ``1 <= len(window) <= context``."""
        if self._episode is None or self._next * self._size >= len(self._episode):
            self._load_next_episode()
        start = self._next * self._size
        self._next += 1
        steps = {k: v[start : start + self._size] for k, v in self._episode.steps.items()}
        return Window(steps, self._episode.extras)

    def state_dict(self) -> dict:
        """``{"source": position before the current episode, "window": windows of it already given}``."""
        return {"source": self._source_state, "window": self._next}

    def load_state_dict(self, state: dict) -> None:
        """Restore a position: re-read the current episode and skip the windows already given."""
        self.source.load_state_dict(state["source"])
        self._episode, self._next = None, 0
        if state["window"]:
            self._load_next_episode()
            self._next = int(state["window"])


# -- 3. one-task batches, tasks drawn by sample weight ------------------------------------------------------------


@dataclass
class Batch:
    """One batch of one task.

    Attributes:
        task: the task name.
        inputs: model keyword arguments: tensors named like the data-set columns, plus ``attention_mask`` and
            ``loss_weight`` (and ``rewards`` for RL tasks).
        num_tokens: valid tokens in the batch (2 per valid RL step: observation and action; 1 per text token).
    """

    task: str
    inputs: dict[str, torch.Tensor]
    num_tokens: int

    def to(self, device) -> Batch:
        """The batch with every tensor on ``device``."""
        return Batch(self.task, {k: v.to(device) for k, v in self.inputs.items()}, self.num_tokens)


def _pad_stack(pieces: list[np.ndarray], length: int, pad: Any = 0) -> np.ndarray:
    """Stack ``(t_i, ...)`` arrays into ``(B, length, ...)``, padding with ``pad`` (``""`` for strings)."""
    first = pieces[0]
    out = np.full((len(pieces), length) + first.shape[1:], "" if first.dtype == object else pad, dtype=first.dtype)
    for i, p in enumerate(pieces):
        out[i, : len(p)] = p
    return out


def collate(spec: TaskSpec, windows: list[Window], processor: Any) -> Batch:
    """Stack windows of one task into a :class:`Batch` of model tensors.

    RL windows: every field padded to the longest window, ``(B, T, *shape)``, and given to
    ``processor.prepare_observations(spec, {field: array})``, ``prepare_actions(spec, array)`` and
    ``prepare_rewards(array)``; ``attention_mask (B, T)`` and ``loss_weight (B, T)`` (the task's loss weight on
    valid steps) are added. Text windows: token ids padded with the processor's pad id and prepared by the text
    field's codec, the per-sample fields concatenated, ``attention_mask (B, L)`` over the tokens and
    ``loss_weight (B,)``.

    Args:
        spec: the task.
        windows: ``B`` windows from :class:`TaskWindows`.
        processor: a ``jat_core.processor.JatProcessor`` (or anything with the same methods).

    Returns:
        The batch.
    """
    lengths = np.array([len(w) for w in windows])
    length = int(lengths.max())
    mask = np.arange(length)[None, :] < lengths[:, None]  # (B, T)
    if not spec.is_rl:
        return _collate_text(spec, windows, processor, length, mask)
    stacked = {k: _pad_stack([w.steps[k] for w in windows], length) for k in windows[0].steps}
    observations = {f.name: stacked[f.name] for f in spec.observation}
    inputs = dict(processor.prepare_observations(spec, observations))
    inputs.update(processor.prepare_actions(spec, stacked[spec.action.name]))
    inputs.update(processor.prepare_rewards(stacked[REWARDS]))  # (B, T)
    inputs["attention_mask"] = torch.as_tensor(mask)  # (B, T)
    inputs["loss_weight"] = torch.as_tensor(mask * np.float32(spec.loss_weight))  # (B, T)
    return Batch(spec.name, inputs, 2 * int(mask.sum()))


def _collate_text(spec: TaskSpec, windows: list[Window], processor: Any, length: int, mask: np.ndarray) -> Batch:
    inputs = {}
    for f in spec.observation:
        codec = processor.codec(f.codec)
        if f.name in windows[0].steps:
            ids = _pad_stack([w.steps[f.name] for w in windows], length, pad=processor.pad_token_id)  # (B, L)
            inputs[codec.columns[SEQUENCE]] = codec.prepare(ids, role=SEQUENCE)
        else:
            inputs[codec.columns[SEQUENCE]] = torch.cat([torch.as_tensor(w.extras[f.name]) for w in windows])
    inputs["attention_mask"] = torch.as_tensor(mask)  # (B, L)
    inputs["loss_weight"] = torch.full((len(windows),), float(spec.loss_weight))  # (B,)
    return Batch(spec.name, inputs, int(mask.sum()))


class MultiTaskBatches:
    """Endless one-task batches; the task of each batch drawn by sample weight.

    The task generator is seeded with ``seed`` alone, so every rank draws the same task sequence while reading
    its own shard of that task's episodes.

    Args:
        tasks: the task specs.
        windows: each task's :class:`TaskWindows`, by name.
        batch_size: windows per batch (per rank).
        processor: turns raw arrays into model tensors (see :func:`collate`).
        seed: seed of the task draws.
    """

    def __init__(
        self,
        tasks: list[TaskSpec],
        windows: dict[str, TaskWindows],
        *,
        batch_size: int,
        processor: Any,
        seed: int = 0,
    ):
        if not tasks:
            raise ValueError("no task to train on")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.tasks, self.windows, self.batch_size, self.processor = list(tasks), windows, batch_size, processor
        weights = np.array([t.sample_weight for t in self.tasks], dtype=np.float64)
        self.probabilities = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> MultiTaskBatches:
        return self

    def __next__(self) -> Batch:
        spec = self.tasks[int(self.rng.choice(len(self.tasks), p=self.probabilities))]
        stream = self.windows[spec.name]
        return collate(spec, [stream.next_window() for _ in range(self.batch_size)], self.processor)

    def skip(self) -> None:
        """Move past the next batch without building it: its task is drawn and its windows are passed over (a
        shuffled sampler only moves its cursor; a sequential reader still reads the episodes it passes)."""
        spec = self.tasks[int(self.rng.choice(len(self.tasks), p=self.probabilities))]
        stream = self.windows[spec.name]
        if hasattr(stream, "skip"):
            stream.skip(self.batch_size)
        else:
            for _ in range(self.batch_size):
                stream.next_window()

    def state_dict(self) -> dict:
        """The data position: the task generator's state and each task's stream position (JSON-serialisable)."""
        return {
            "rng": self.rng.bit_generator.state,
            "tasks": {name: w.state_dict() for name, w in self.windows.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a position from :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]
        for name, s in state["tasks"].items():
            if name in self.windows:
                self.windows[name].load_state_dict(s)


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
        source = open_episodes(spec, data, streaming=streaming)
        for _ in range(episodes):
            _, row = source.next_episode()
            for name in names:
                for text in np.asarray(row.get(name, []), dtype=object).reshape(-1):
                    seen.setdefault(str(text), None)
            if getattr(source, "epoch", 0) > 0:  # all of a small data set read
                break
    return list(seen)


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


def build_batches(
    tasks: list[TaskSpec],
    sources: dict[str, EpisodeSource],
    *,
    processor: Any,
    batch_size: int,
    max_position_embeddings: int,
    seed: int = 0,
) -> MultiTaskBatches:
    """The batch stream of this rank.

    Windows of RL tasks with local data are drawn from the whole data set in a fresh random order each epoch
    (:class:`jat_train.windows.ShuffledWindows`, as the reference sampled them); streamed episodes and text
    samples are read in their (per-epoch shuffled, for local data) order and cut in turn (:class:`TaskWindows`).

    Args:
        tasks: task specs.
        sources: each task's episodes, by name (:func:`open_sources`).
        processor: see :func:`collate`.
        batch_size: windows per batch on this rank.
        max_position_embeddings: the model's context in tokens; RL windows are ``task.context_steps`` or half of
            it (two tokens per step), text windows all of it.
        seed: seed of the task draws.

    Returns:
        A :class:`MultiTaskBatches`.
    """
    from jat_train.windows import ShuffledWindows

    windows = {}
    for spec in tasks:
        context = (spec.context_steps or max_position_embeddings // 2) if spec.is_rl else max_position_embeddings
        source = sources[spec.name]
        if spec.is_rl and isinstance(source, LocalEpisodes):  # random access: every window, shuffled
            windows[spec.name] = ShuffledWindows(spec, source, context)
        else:
            windows[spec.name] = TaskWindows(spec, source, context, processor)
    return MultiTaskBatches(tasks, windows, batch_size=batch_size, processor=processor, seed=seed)
