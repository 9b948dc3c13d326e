"""Training data: episodes from the hub or a local directory, cut into windows, batched one task at a time.

The pipeline, top to bottom:

1. :func:`open_episodes` opens one task's episodes (one row = one episode) for this rank: from the hub
   (``datasets.load_dataset(repo, config, streaming=True)``, sharded with ``split_dataset_by_node``) as a
   :class:`StreamEpisodes`, or from a local directory written by ``jat-collect`` (``save_to_disk``) as a
   :class:`LocalEpisodes` (reshuffled each epoch, every ``world_size``-th episode for each rank).
2. :class:`TaskWindows` checks each episode against its task's spec (a mismatch names task, episode and field),
   shifts the rewards so that observation ``t`` carries the reward received before it (``[0] + r[:-1]``), and
   cuts it into windows of ``context`` timesteps, keeping every piece (the last one is shorter). Text tasks are
   tokenized with the processor's tokenizer and cut into pieces of ``context`` tokens the same way.
3. :class:`MultiTaskBatches` draws a task by sample weight (a seeded generator shared by every rank, so all
   ranks work on the same task at each step) and stacks ``batch_size`` windows of that task into a
   :class:`Batch`: padded to the longest window, with ``attention_mask`` and a per-step ``loss_weight``, turned
   into model tensors by the processor (which knows the columns; this module names none).

Every stage has a ``state_dict()``/``load_state_dict()``: the data position saved in checkpoints, so that a
resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import copy
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


class DataError(ValueError):
    """Training data is missing, unreachable or does not match its task's spec."""


def hub_hint(tasks: list[str]) -> str:
    """How to get the data without the hub: collect it locally and train from the directory."""
    names = ",".join(tasks)
    return (
        f"collect the episodes locally with `jat-collect --tasks {names} --out DIR` "
        f"and train from them with `--data DIR`"
    )


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
    """Episodes of a ``datasets.IterableDataset`` (hub streaming), this rank's part of it.

    The stream is split across ranks with ``datasets.distributed.split_dataset_by_node`` and restarted (with
    ``set_epoch``) when exhausted. Its position is the data set's own ``state_dict``.

    Args:
        dataset: the streamed episodes.
        task: task name (names errors).
        rank, world_size: this process's part.
    """

    def __init__(self, dataset, *, task: str, rank: int = 0, world_size: int = 1):
        from datasets.distributed import split_dataset_by_node

        if world_size > 1:
            dataset = split_dataset_by_node(dataset, rank=rank, world_size=world_size)
        self.dataset = dataset.with_format("numpy")
        self.task = task
        self.epoch, self.count = 0, 0  # count: episodes read in this epoch
        self._it: Iterator | None = None

    def next_episode(self) -> tuple[int, dict[str, Any]]:
        """The next streamed episode, ``(index within this rank's epoch, row)``."""
        for _ in range(2):
            if self._it is None:
                self._it = iter(self.dataset)
            try:
                row = next(self._it)
            except StopIteration:
                if self.count == 0:
                    raise DataError(f"task {self.task!r}: the stream holds no episode for this rank") from None
                self.epoch, self.count, self._it = self.epoch + 1, 0, None
                self.dataset.set_epoch(self.epoch)
                continue
            self.count += 1
            return self.count - 1, row
        raise AssertionError("unreachable")

    def state_dict(self) -> dict:
        """``{"epoch", "count", "dataset"}`` (the data set's own position)."""
        return {"epoch": self.epoch, "count": self.count, "dataset": copy.deepcopy(self.dataset.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        """Restore a position."""
        self.epoch, self.count = int(state["epoch"]), int(state["count"])
        self.dataset.set_epoch(self.epoch)
        self.dataset.load_state_dict(copy.deepcopy(state["dataset"]))
        self._it = None


def open_episodes(
    spec: TaskSpec, data: str, *, split: str = SPLIT, rank: int = 0, world_size: int = 1, seed: int = 0
) -> EpisodeSource:
    """Open one task's episodes for this rank.

    Args:
        spec: the task; its ``dataset`` names the hub repo/config and the local directory name.
        data: ``"hub"`` to stream from the hub, else a local root directory (``DIR/<task>/``, as ``jat-collect``
            writes it: a ``DatasetDict`` saved with ``save_to_disk``, or a single ``Dataset``).
        split: the split to read.
        rank, world_size: this process's shard.
        seed: shuffling seed (local data).

    Returns:
        An :class:`EpisodeSource`.

    Raises:
        DataError: no such directory or split, an empty split, a damaged local data set (the message names
            the file), or the hub is unreachable (the message says how to collect the data locally instead).
    """
    if data == "hub":
        if spec.dataset is None:
            raise DataError(f"task {spec.name!r} names no hub data set; {hub_hint([spec.name])}")
        import datasets

        try:
            stream = datasets.load_dataset(spec.dataset.repo, spec.dataset.config, split=split, streaming=True)
        except Exception as exc:  # offline, unknown repo/config: all end here, with the way out
            raise DataError(
                f"task {spec.name!r}: could not stream {spec.dataset.repo!r} (config {spec.dataset.config!r}) "
                f"from the hub ({type(exc).__name__}: {exc}); {hub_hint([spec.name])}"
            ) from exc
        return StreamEpisodes(stream, task=spec.name, rank=rank, world_size=world_size)

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


def sample_texts(tasks: list[TaskSpec], data: str, *, episodes: int = 200) -> list[str]:
    """Distinct strings of the tasks' string fields in their first ``episodes`` episodes (to train a tokenizer).

    Args:
        tasks: task specs; only their ``string`` fields are read.
        data: ``"hub"`` or a local root directory.
        episodes: episodes read per task.

    Returns:
        The strings, in order of first appearance.
    """
    seen: dict[str, None] = {}
    for spec in tasks:
        names = [f.name for f in spec.fields if f.dtype == "string"]
        if not names:
            continue
        source = open_episodes(spec, data)
        for _ in range(episodes):
            _, row = source.next_episode()
            for name in names:
                for text in np.asarray(row.get(name, []), dtype=object).reshape(-1):
                    seen.setdefault(str(text), None)
            if isinstance(source, LocalEpisodes) and source.epoch > 0:
                break
    return list(seen)


def open_sources(
    tasks: list[TaskSpec], data: str, *, rank: int = 0, world_size: int = 1, seed: int = 0, split: str = SPLIT
) -> dict[str, EpisodeSource]:
    """Open every task's episodes for this rank (see :func:`open_episodes`), by task name.

    Done before anything else in a run, so that missing data is reported before a model is built.
    """
    return {
        spec.name: open_episodes(spec, data, split=split, rank=rank, world_size=world_size, seed=seed)
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
