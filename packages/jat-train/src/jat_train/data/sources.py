"""Episode sources: one task's episodes for one rank, endless, with a resumable position.

Stage 1 of the training-data pipeline (:mod:`jat_train.data` has the overview). An :class:`EpisodeSource` gives
``(episode index, row)`` pairs, one row per episode, epoch after epoch:

- :class:`LocalEpisodes`: a map-style ``datasets.Dataset`` (a ``jat-collect`` directory, or a hub split read
  without streaming), reshuffled each epoch, every ``world_size``-th episode for each rank;
- :class:`StreamEpisodes`: a streamed ``datasets.IterableDataset`` (the hub, a mirror or a local replica),
  through a shuffle buffer, split across ranks.

Both save their position with ``state_dict()``. Resuming is exact for local data and for streams with a
shuffle buffer of 0 or 1 episode; with a larger buffer the rest of the interrupted epoch differs (``datasets``
does not save the buffer), see :class:`StreamEpisodes`. Where the episodes are found and how they are opened is
:mod:`jat_train.data.episodes`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import re
import zlib
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
from jat_core.specs import TaskSpec

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
    ``set_epoch`` on a new view of it when exhausted (a new shard order and new buffer draws each epoch). Its
    position is the data set's own ``state_dict``.

    The rows are read with ``IterableDataset.iter(batch_size=1)``, not ``iter(dataset)``: inside a
    ``torch.utils.data.DataLoader`` worker (``jat-train --num-workers``) the latter would give each worker only
    its share of the shards (and its own shuffle seed), while every worker of :class:`jat_train.data.loader.BatchLoader`
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
        source: what is streamed, for errors (e.g. the repository, config and split).

    A transient network error is retried by ``datasets`` itself, as its settings say
    (``datasets.config.STREAMING_OPEN_MAX_RETRIES`` / ``STREAMING_READ_MAX_RETRIES`` tries,
    ``STREAMING_*_RETRY_INTERVAL`` seconds apart, longer when the server is unavailable or rate-limits); an error
    that lasts past them, or a damaged shard, stops the stream with a :class:`DataError` naming the task,
    ``source``, the shard and, where ``datasets`` logs it or the error carries its URL, the file.
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
        source: str | None = None,
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
        self._stream = dataset
        self.dataset = self._epoch_view(0)
        self.task, self.shuffle_buffer = task, shuffle_buffer
        self.hint = hint if hint is not None else hub_hint([task])
        self.source = source
        self.epoch, self.count = 0, 0  # count: episodes read in this epoch
        self._it: Iterator | None = None

    def _epoch_view(self, epoch: int):
        """A new view of the stream (numpy rows) set to ``epoch``, with an epoch counter of its own.

        ``datasets`` keeps an ``IterableDataset``'s epoch in torch shared memory, which the forked workers of a
        ``DataLoader`` share, and ``set_epoch`` updates it in place: calling it on one data set object would move
        the epoch of every worker's copy, and two workers starting their next epoch together could add up to a
        skipped one. ``with_format`` builds a new data set (a new counter, created in the process that reads it).
        """
        view = self._stream.with_format("numpy")
        view.set_epoch(epoch)
        return view

    def next_episode(self) -> tuple[int, dict[str, Any]]:
        """The next streamed episode, ``(index within this rank's epoch, row)``.

        Raises:
            DataError: the stream holds no episode for this rank, or reading it failed (the connection, a damaged
                shard): naming the task and how to get the data another way.
        """
        for _ in range(2):
            try:
                with _failed_files() as failed:
                    if self._it is None:
                        self._it = self.dataset.iter(batch_size=1)
                    row = {name: values[0] for name, values in next(self._it).items()}
            except StopIteration:
                if self.count == 0:
                    raise DataError(
                        f"task {self.task!r}: the stream holds no episode for this rank; {self.hint}"
                    ) from None
                self.epoch, self.count, self._it = self.epoch + 1, 0, None
                self.dataset = self._epoch_view(self.epoch)
                continue
            except Exception as exc:  # a lasting network error, a damaged parquet shard, an undecodable image...
                self._it = None
                failed += _urls_in(exc)
                raise DataError(
                    f"task {self.task!r}: reading its streamed episodes{self._where(failed)} failed after episode "
                    f"{self.count} of epoch {self.epoch} ({type(exc).__name__}: {exc}); {self.hint}"
                ) from exc
            self.count += 1
            return self.count - 1, row
        raise AssertionError("unreachable")

    def _where(self, failed: list[str]) -> str:
        """`` from SOURCE, shard I of N (file F)``: as much of it as is known."""
        out = f" from {self.source}" if self.source else ""
        shard = _shard_index(self.dataset.state_dict())
        if shard is not None:
            out += f", shard {shard} of {self.dataset.n_shards}"
        if failed:
            out += f" (file {failed[-1]!r})"
        return out

    def state_dict(self) -> dict:
        """``{"epoch", "count", "dataset"}`` (the data set's own position; see the class docstring for what it
        restores with a shuffle buffer)."""
        return {"epoch": self.epoch, "count": self.count, "dataset": copy.deepcopy(self.dataset.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        """Restore a position."""
        self.epoch, self.count = int(state["epoch"]), int(state["count"])
        self.dataset = self._epoch_view(self.epoch)
        self.dataset.load_state_dict(copy.deepcopy(state["dataset"]))
        self._it = None


def _shard_index(state: Any) -> int | None:
    """The shard a streamed data set's ``state_dict()`` is reading (its innermost ``shard_idx``), or ``None``."""
    found = None
    while isinstance(state, dict):
        if isinstance(state.get("shard_idx"), int):
            found = state["shard_idx"]
        state = state.get("examples_iterable")
    return found


def _urls_in(exc: BaseException) -> list[str]:
    """The URLs the errors in ``exc``'s chain carry (an HTTP client's request, a hub error's response): the file a
    lasting connection error was reading, which ``datasets``' own error after its retries does not name."""
    urls, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for attr in ("request", "response"):
            try:  # an HTTP client raises when an error was built without a request
                url = getattr(getattr(exc, attr, None), "url", None)
            except Exception:
                url = None
            if url is not None and str(url) not in urls:
                urls.append(str(url))
        exc = exc.__cause__ or exc.__context__
    return urls


@contextlib.contextmanager
def _failed_files() -> Iterator[list[str]]:
    """The files ``datasets`` reports it failed to read while the block runs (its readers log the path, which
    their exceptions do not carry)."""
    import logging

    failed: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = re.search(r"Failed to read file '([^']+)'", record.getMessage())
            if found:
                failed.append(found.group(1))

    handler, logger = Catch(logging.ERROR), logging.getLogger("datasets")
    logger.addHandler(handler)
    try:
        yield failed
    finally:
        logger.removeHandler(handler)
