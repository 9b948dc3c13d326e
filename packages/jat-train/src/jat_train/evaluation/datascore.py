"""Data-normalised scores: a model's return against the return of the episodes it imitated.

The expert-normalised score ``(R - random) / (expert - random)`` mixes two questions: did the model learn its
data, and was the data good? With local data (``jat-collect``) the second is known: the mean return ``D`` of
the training episodes. The data-normalised score ``(R - random) / (D - random)`` is 1 when the model acts as
well as the data it was trained on, whatever the expert's own score; next to the expert-normalised one it tells
"the model did not learn" (low data-normalised) from "the expert was weak" (data-normalised near 1, expert-
normalised low).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from jat_core.specs import TaskSpec

from jat_train.data import REWARDS, DataError, LocalEpisodes, open_episodes


def data_return(task: TaskSpec, data: str) -> float | None:
    """Mean episode return of ``task``'s local episodes under ``data``: the ``test`` split's when it has episodes
    (played without ``jat-collect --action-noise``, so the return of the policy whose actions were recorded),
    else the ``train`` split's (``None``: no local episodes)."""
    for split in ("test", "train"):
        try:
            source = open_episodes(task, data, split=split)
        except DataError:
            continue
        if not isinstance(source, LocalEpisodes) or REWARDS not in source.dataset.column_names:
            return None
        returns = [float(np.sum(r)) for r in source.dataset[REWARDS]]
        if returns:
            return float(np.mean(returns))
    return None


def data_normalize(value: float, data_mean: float | None, random: float | None) -> float | None:
    """``(value - random) / (data_mean - random)``, or ``None`` when the data does not beat random."""
    if data_mean is None or random is None or not data_mean > random:
        return None
    return (value - random) / (data_mean - random)


def add_data_scores(results: dict[str, Any], tasks: Sequence[TaskSpec], data: str) -> dict[str, Any]:
    """Add ``data_mean`` and ``data_normalized`` (of the mean return) to each task of a ``jat-eval`` results dict,
    and to each domain and to ``all`` the aggregates of the per-episode data-normalised returns, keys prefixed
    ``data_normalized_`` (:func:`jat_train.evaluation.results.aggregate_intervals`: ``data_normalized_iqm`` is the paper's
    way, ``data_normalized_task_mean_iqm`` the IQM of per-task means); returns ``results`` (changed in place).

    Args:
        results: what :func:`jat_train.evaluation.evaluate.evaluate` returned.
        tasks: the evaluated tasks.
        data: the local data root the model was trained on.
    """
    from jat_train.evaluation.results import aggregate_intervals

    by_name = {t.name: t for t in tasks}
    per_domain: dict[str, list[list[float]]] = {}
    for name, entry in results["tasks"].items():
        task = by_name.get(name)
        if task is None:
            continue
        mean = data_return(task, data)
        random = task.scores.random if task.scores is not None else None
        entry["data_mean"] = mean
        entry["data_normalized"] = data_normalize(entry["mean"], mean, random)
        if entry["data_normalized"] is not None:
            episodes = [data_normalize(r, mean, random) for r in entry.get("episode_returns", [entry["mean"]])]
            per_domain.setdefault(task.domain, []).append(episodes)
    reps, seed = _bootstrap_settings(results)
    for domain, per_task in per_domain.items():
        if domain in results["domains"]:
            results["domains"][domain].update(aggregate_intervals(per_task, reps, seed, prefix="data_normalized_"))
    every = [s for per_task in per_domain.values() for s in per_task]
    results["all"].update(aggregate_intervals(every, reps, seed, prefix="data_normalized_"))
    return results


def _bootstrap_settings(results: dict[str, Any]) -> tuple[int, int]:
    """The bootstrap's replicates and seed that made ``results``' other intervals (defaults when absent)."""
    from jat_train.evaluation.scores import DEFAULT_REPS

    boot = results.get("bootstrap", {})
    return int(boot.get("reps", DEFAULT_REPS)), int(boot.get("seed", 0))
