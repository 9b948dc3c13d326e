"""Shuffled windows: every window of a task's local episodes, in a fresh random order each epoch.

The reference trained with the Hugging Face Trainer on the windows of every episode, shuffled. Reading them in
order (all windows of one episode, then the next episode) fills a batch with neighbouring pieces of one episode,
which are strongly correlated; this class draws them the reference's way for local data (``jat-collect`` output,
random access by row):

- the window table is built once from the episode lengths: episode ``e`` of ``n`` steps gives the windows
  :func:`jat_core.sequence.window_bounds` ``(n, context)`` (nothing dropped, the last piece shorter);
- each epoch permutes the whole table with a generator seeded by (seed, task, epoch), so every rank computes
  the same permutation and reads its own positions ``rank, rank + world_size, ...`` of it (disjoint shards);
- the position is ``(epoch, cursor)``: a resumed run reads exactly the windows an uninterrupted run would have.

An episode is read and checked (:func:`jat_train.data.check_episode`) when one of its windows is drawn; the
last episode read is kept, which is what sequential readers of long episodes hit most.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from jat_core.sequence import window_bounds
from jat_core.specs import TaskSpec

from jat_train.data import REWARDS, DataError, LocalEpisodes, Window, check_episode, task_seed


def episode_lengths(dataset: Any) -> np.ndarray:
    """Steps of every episode (one row each) of a map-style data set: the lengths of its ``rewards`` column."""
    if REWARDS not in dataset.column_names:
        raise DataError(f"no {REWARDS!r} column in the data set (columns: {dataset.column_names})")
    return np.array([len(r) for r in dataset[REWARDS]], dtype=np.int64)


class ShuffledWindows:
    """One RL task's windows from local episodes, reshuffled every epoch (see the module docstring).

    Same interface as :class:`jat_train.data.TaskWindows` (``next_window``, ``state_dict``,
    ``load_state_dict``).

    Args:
        spec: the task (an RL task).
        source: its local episodes (their data set, seed and rank/world size are used).
        context: window length in timesteps.
    """

    def __init__(self, spec: TaskSpec, source: LocalEpisodes, context: int) -> None:
        if context <= 0:
            raise ValueError(f"task {spec.name!r}: context must be positive, got {context}")
        self.spec, self.source, self.context = spec, source, context
        lengths = episode_lengths(source.dataset)  # (E,)
        table = [(e, start) for e, n in enumerate(lengths) for start, _ in window_bounds(int(n), context)]
        if not table:
            raise DataError(f"task {spec.name!r}: every one of its {len(lengths)} episodes is empty")
        self._table = np.array(table, dtype=np.int64)  # (W, 2): episode, first step
        self.epoch, self.cursor = 0, 0
        self._order = self._epoch_order()
        self._cached: tuple[int, dict[str, np.ndarray]] | None = None

    @property
    def num_windows(self) -> int:
        """Windows in one epoch of the whole data set (all ranks)."""
        return len(self._table)

    def _epoch_order(self) -> np.ndarray:
        """This rank's window indices for the current epoch."""
        source, n = self.source, len(self._table)
        perm = np.random.default_rng([*task_seed(source.seed, self.spec.name), self.epoch, 1]).permutation(n)
        shard = perm[source.rank :: source.world_size]
        return shard if len(shard) else perm[[source.rank % n]]

    def _episode(self, index: int) -> dict[str, np.ndarray]:
        """Episode ``index`` checked and reward-shifted (the last one read is kept)."""
        if self._cached is None or self._cached[0] != index:
            self._cached = index, check_episode(self.spec, index, self.source.dataset[index])
        return self._cached[1]

    def next_window(self) -> Window:
        """The next window of this rank's shuffled order, ``1 <= len(window) <= context``."""
        if self.cursor >= len(self._order):
            self.epoch, self.cursor = self.epoch + 1, 0
            self._order = self._epoch_order()
        episode, start = (int(v) for v in self._table[self._order[self.cursor]])
        self.cursor += 1
        steps = self._episode(episode)
        return Window({k: v[start : start + self.context] for k, v in steps.items()})

    def skip(self, n: int) -> None:
        """Move past the next ``n`` windows without reading them (what :meth:`next_window` would have given)."""
        self.cursor += n
        while self.cursor > len(self._order):
            self.cursor -= len(self._order)
            self.epoch += 1
            self._order = self._epoch_order()

    def state_dict(self) -> dict:
        """``{"epoch", "cursor"}``: the position in this rank's shuffled order."""
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        """Go back to a position returned by :meth:`state_dict`."""
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._order = self._epoch_order()
