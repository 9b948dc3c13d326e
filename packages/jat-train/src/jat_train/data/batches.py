"""One-task batches, the task of each drawn by sample weight: stage 3 of the training-data pipeline.

:func:`build_batches` gives each task its window reader (:mod:`jat_train.data.windows`) and a
:class:`MultiTaskBatches` over them: each batch draws a task by sample weight (a seeded generator shared by every
rank, so all ranks work on the same task at each step) and :func:`collate` stacks ``batch_size`` windows of that
task into a :class:`Batch` of model tensors, padded to the longest window, with ``attention_mask`` and a
per-step ``loss_weight``; the processor turns the raw arrays into tensors (it knows the columns; this module
names none). :mod:`jat_train.data` has the overview; :class:`jat_train.data.loader.BatchLoader` runs the stream in
DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jat_core.codec import SEQUENCE
from jat_core.specs import TaskSpec

from jat_train.data.sources import REWARDS, EpisodeSource, LocalEpisodes
from jat_train.data.windows import ShuffledWindows, TaskWindows, Window

#: Batches' worth of windows sorted by length together (:meth:`ShuffledWindows.group_by_length`): a batch of short
#: episodes is padded to about the length of its own windows instead of the longest episode drawn at random.
LENGTH_GROUP = 8


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
    ``prepare_rewards(array, spec)``; ``attention_mask (B, T)`` and ``loss_weight (B, T)`` (the task's loss weight on
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
    inputs.update(processor.prepare_rewards(stacked[REWARDS], spec))  # (B, T)
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
        batch_size: windows per batch (per rank): one number for every task, or one per task name.
        processor: turns raw arrays into model tensors (see :func:`collate`).
        seed: seed of the task draws.
    """

    def __init__(
        self,
        tasks: list[TaskSpec],
        windows: dict[str, TaskWindows],
        *,
        batch_size: int | dict[str, int],
        processor: Any,
        seed: int = 0,
    ):
        if not tasks:
            raise ValueError("no task to train on")
        sizes = batch_size if isinstance(batch_size, dict) else {t.name: batch_size for t in tasks}
        for t in tasks:
            if sizes.get(t.name, 0) <= 0:
                raise ValueError(f"batch_size of task {t.name!r} must be positive, got {sizes.get(t.name)}")
        self.tasks, self.windows, self.batch_sizes, self.processor = list(tasks), windows, sizes, processor
        weights = np.array([t.sample_weight for t in self.tasks], dtype=np.float64)
        self.probabilities = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> MultiTaskBatches:
        return self

    def __next__(self) -> Batch:
        spec = self.tasks[int(self.rng.choice(len(self.tasks), p=self.probabilities))]
        stream = self.windows[spec.name]
        return collate(spec, [stream.next_window() for _ in range(self.batch_sizes[spec.name])], self.processor)

    def skip(self) -> None:
        """Move past the next batch without building it: its task is drawn and its windows are passed over (a
        shuffled sampler only moves its cursor; a sequential reader still reads the episodes it passes)."""
        spec = self.tasks[int(self.rng.choice(len(self.tasks), p=self.probabilities))]
        stream, size = self.windows[spec.name], self.batch_sizes[spec.name]
        if hasattr(stream, "skip"):
            stream.skip(size)
        else:
            for _ in range(size):
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


def build_batches(
    tasks: list[TaskSpec],
    sources: dict[str, EpisodeSource],
    *,
    processor: Any,
    batch_size: int,
    max_position_embeddings: int,
    seed: int = 0,
    batch_tokens: int | None = None,
    task_batch_size: dict[str, int] | None = None,
) -> MultiTaskBatches:
    """The batch stream of this rank.

    Windows of RL tasks with local data are drawn from the whole data set in a fresh random order each epoch
    (:class:`jat_train.data.windows.ShuffledWindows`, as the reference sampled them), runs of :data:`LENGTH_GROUP`
    batches sorted by length so that a batch holds windows of similar lengths; streamed episodes and text
    samples are read in their (per-epoch shuffled, for local data) order and cut in turn (:class:`TaskWindows`).

    Args:
        tasks: task specs.
        sources: each task's episodes, by name (:func:`open_sources`).
        processor: see :func:`collate`.
        batch_size: windows per batch on this rank.
        max_position_embeddings: the model's context in tokens; RL windows are ``task.context_steps`` or half of
            it (two tokens per step), text windows all of it.
        seed: seed of the task draws.
        batch_tokens: if set, a task whose ``batch_size`` windows would hold more tokens than this gets fewer
            windows per batch (:func:`windows_per_batch`).
        task_batch_size: per task or domain name, the most windows per batch instead of ``batch_size`` (a task's
            own name wins over its domain's).

    Returns:
        A :class:`MultiTaskBatches`.
    """
    caps = task_batch_size or {}
    unknown = set(caps) - {t.name for t in tasks} - {t.domain for t in tasks}
    if unknown:
        raise ValueError(f"task_batch_size names no task or domain of this run: {sorted(unknown)}")
    windows, sizes = {}, {}
    for spec in tasks:
        context = (spec.context_steps or max_position_embeddings // 2) if spec.is_rl else max_position_embeddings
        source = sources[spec.name]
        if spec.is_rl and isinstance(source, LocalEpisodes):  # random access: every window, shuffled
            windows[spec.name] = ShuffledWindows(spec, source, context)
        else:
            windows[spec.name] = TaskWindows(spec, source, context, processor)
        most = caps.get(spec.name, caps.get(spec.domain, batch_size))
        sizes[spec.name] = most if batch_tokens is None else windows_per_batch(
            spec, windows[spec.name], context, batch_tokens, most)
        if isinstance(windows[spec.name], ShuffledWindows):
            windows[spec.name].group_by_length(LENGTH_GROUP * sizes[spec.name])
    return MultiTaskBatches(tasks, windows, batch_size=sizes, processor=processor, seed=seed)


def windows_per_batch(spec: TaskSpec, windows: Any, context: int, batch_tokens: int, batch_size: int) -> int:
    """Windows per batch under two caps: at most ``batch_size`` windows and about ``batch_tokens`` tokens.

    A batch of full windows of a long-episode task (512 tokens each for a text document or a 1000-step
    episode) costs several times a batch of short episodes (a few steps each), so a step on such a task holds up the
    others; a token budget gives it fewer windows instead. A batch is padded to its longest window, so the budget is
    divided by the 90th percentile of the task's window lengths, not their mean.

    Args:
        spec: the task.
        windows: its window reader; a :class:`ShuffledWindows` knows its window lengths, any other reader
            (streamed episodes, text) is counted as full windows.
        context: window length, in steps (RL) or tokens.
        batch_tokens: the token budget.
        batch_size: the most windows a batch holds.

    Returns:
        ``min(batch_size, round(batch_tokens / tokens per window))``, at least 1.
    """
    tokens_per_step = 2 if spec.is_rl else 1  # an RL step is an observation token and an action token
    steps = windows.window_steps(0.9) if isinstance(windows, ShuffledWindows) else context
    return max(1, min(batch_size, round(batch_tokens / (tokens_per_step * steps))))
