"""Batches built ahead of the model by ``torch.utils.data.DataLoader`` workers, with an exact data position.

:class:`jat_train.data.batches.MultiTaskBatches` is a deterministic stream: the batch at step ``k`` depends only on the
seed and the position. :class:`BatchLoader` runs it in ``num_workers`` worker processes that read episodes,
decode frames, cut windows and collate, ``prefetch`` batches each ahead of the training loop:

- every worker holds its own copy of the stream and walks the SAME sequence of batches; worker ``w`` builds the
  batches ``k`` with ``k % num_workers == w`` and only skips the others (:meth:`MultiTaskBatches.skip`: the task
  draw and the window cursor move, no episode is decoded for a shuffled sampler);
- the DataLoader hands out its workers' batches in round-robin order, so the loop receives batch 0, 1, 2, ...
  exactly as the in-process stream (``num_workers=0``) would give them;
- each batch travels with the stream's position after it; :meth:`BatchLoader.state_dict` is the position after
  the last batch the loop TOOK (not the ones prefetched), which is what a checkpoint saves. A resumed run loads
  it and restarts the workers from there: the same batches, bit for bit.

The DataLoader gets its own ``torch.Generator``, so starting (or restarting) the workers draws nothing from the
training process's global RNG.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from jat_train.data.batches import Batch, MultiTaskBatches


class _BatchStream(IterableDataset):
    """The batches of one :class:`MultiTaskBatches`, split round-robin across DataLoader workers."""

    def __init__(self, batches: MultiTaskBatches) -> None:
        super().__init__()
        self.batches = batches

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        batches = self.batches  # a worker's own copy (forked or unpickled); in process, the stream itself
        try:
            while True:
                for k in range(workers):
                    if k == worker:
                        batch = next(batches)
                        yield batch, batches.state_dict()
                    else:
                        batches.skip()
        except Exception as exc:  # noqa: BLE001 - handed to the training process, which raises it as it is
            if info is None:
                raise
            yield _Failure(exc), None


class _Failure:
    """An exception raised in a worker, carried to the training process (where it is raised unchanged, instead
    of the DataLoader's multi-line "Caught ... in DataLoader worker process" wrapper)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def _as_is(item: Any) -> Any:
    """No conversion: items are ``(Batch, state)`` pairs already."""
    return item


class BatchLoader:
    """An endless iterator of :class:`Batch` es, built by ``num_workers`` processes (0: in this process).

    Args:
        batches: the batch stream (at the position to start from).
        num_workers: worker processes (0: build each batch in the training process when it is asked for).
        prefetch: batches each worker builds ahead.
    """

    def __init__(self, batches: MultiTaskBatches, *, num_workers: int = 0, prefetch: int = 2) -> None:
        if num_workers < 0:
            raise ValueError(f"num_workers: expected 0 or more, got {num_workers}")
        if prefetch < 1:
            raise ValueError(f"prefetch: expected 1 or more, got {prefetch}")
        self.batches, self.num_workers, self.prefetch = batches, int(num_workers), int(prefetch)
        self._state = batches.state_dict()
        self._iterator = None

    def _start(self):
        loader = DataLoader(
            _BatchStream(self.batches),
            batch_size=None,
            collate_fn=_as_is,
            num_workers=self.num_workers,
            prefetch_factor=self.prefetch if self.num_workers else None,
            generator=torch.Generator().manual_seed(0),
        )
        return iter(loader)

    def __iter__(self) -> BatchLoader:
        return self

    def __next__(self) -> Batch:
        if self._iterator is None:
            self._iterator = self._start()
        batch, state = next(self._iterator)
        if isinstance(batch, _Failure):
            self.close()
            raise batch.exc
        self._state = state
        return batch

    def state_dict(self) -> dict:
        """The stream's position after the last batch handed out (JSON-serialisable)."""
        return self._state

    def load_state_dict(self, state: dict) -> None:
        """Continue from a position of :meth:`state_dict` (workers restart from it on the next batch)."""
        self.close()
        self.batches.load_state_dict(state)
        self._state = self.batches.state_dict()

    def close(self) -> None:
        """Stop the workers (the next batch starts them again, from the current position)."""
        if self._iterator is not None and self.num_workers:
            self.batches.load_state_dict(self._state)
        self._iterator = None
