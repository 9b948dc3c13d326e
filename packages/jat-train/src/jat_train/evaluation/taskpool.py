"""Whole tasks in worker processes: each worker runs one task's episodes at a time, so every core works.

A task's episodes are seeded by the task's own seeds (:mod:`jat_train.evaluation.rollouts`), so where a task runs does not
change what it returns: :func:`map_tasks` gives the same results as a loop, in the tasks' order.

Workers are forked: they inherit the policy (a model already loaded, the expert, a user's factory) and the task
specs without pickling them; only task indices go to the workers and plain results come back. Each worker uses
one torch thread, so N workers use N cores.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: what a forked worker runs: set in the parent just before the pool forks
_JOB: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _run(index: int) -> tuple[int, Any]:
    assert _JOB is not None
    fn, items = _JOB
    return index, fn(items[index])


def map_tasks(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` for each item, computed by ``workers`` forked processes (in this process when
    ``workers <= 1``, there is one item, or the platform cannot fork), yielded as they finish.

    Args:
        fn: what to run per item (it and the items are inherited by the workers, not pickled); its result must
            pickle.
        items: the items (tasks).
        workers: processes side by side.
    """
    global _JOB
    if workers <= 1 or len(items) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for item in items:
            yield item, fn(item)
        return
    _JOB = (fn, items)
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(items)), initializer=_init_worker) as pool:
            for index, result in pool.imap_unordered(_run, range(len(items))):
                yield items[index], result
    finally:
        _JOB = None
