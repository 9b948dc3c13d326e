"""Aggregate scores: interquartile mean (IQM) with a 95% stratified bootstrap confidence interval.

Two aggregates, both written with numpy and ``scipy.stats.trim_mean``:

- :func:`episode_bootstrap_iqm`, **the paper's**: the reference JAT evaluation hands rliable (Agarwal et al.
  2021) an (episodes x tasks) matrix of normalised returns; ``metrics.aggregate_iqm`` trims the *flattened*
  matrix (``trim_mean(x, 0.25, axis=None)``: the mean of the middle 50% of all episodes of all tasks), and
  ``library.get_interval_estimates`` draws a stratified bootstrap: each replicate resamples, within each task
  (the strata), that task's episodes with replacement; the interval is the 2.5th and 97.5th percentiles of the
  replicates (the percentile method). rliable itself does not install on today's stack (its ``arch``
  dependency fails to import with pandas 2), so this is our own code; tests/train/test_scores_rliable.py shows it
  gives rliable's numbers on fixed matrices.
- :func:`stratified_bootstrap_iqm`, the **per-task-mean IQM**: each task's episodes are first averaged, then
  the IQM is taken over tasks (the same stratified resampling for the interval). It weighs every task once,
  whatever its spread; results label it ``task_mean_iqm``.

The set of tasks is never resampled: the interval says how much the score would move with other evaluation
episodes of the same tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import trim_mean

#: Bootstrap replicates by default (rliable uses 2000 for its interval estimates in its examples).
DEFAULT_REPS = 2000


def iqm(values: Sequence[float] | np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: the mean of the values between the 25th and 75th percentiles.

    Args:
        values: the values (any shape).
        axis: axis to reduce; ``None`` flattens.

    Returns:
        A float (``axis=None``) or an array with ``axis`` removed.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("iqm: expected at least one value, got an empty array")
    out = trim_mean(values, 0.25, axis=axis)
    return float(out) if axis is None else out


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    iqm: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float]:
        """``{"iqm", "ci_low", "ci_high"}`` as plain floats (for JSON)."""
        return {"iqm": self.iqm, "ci_low": self.ci_low, "ci_high": self.ci_high}


def stratified_bootstrap_iqm(
    scores_per_task: Sequence[Sequence[float]],
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Per-task-mean IQM: the IQM over tasks of each task's mean score, with a stratified bootstrap interval.

    Args:
        scores_per_task: one sequence of per-episode (normalised) scores per task; tasks may have different
            numbers of episodes, each at least one.
        reps: bootstrap replicates.
        confidence: size of the interval (0.95: the 2.5th to the 97.5th percentile).
        seed: seed of the resampling; the same seed gives the same interval.

    Returns:
        :class:`Interval` with the point estimate (computed on the data, not the replicates) and the bounds.

    Raises:
        ValueError: no task, a task with no episode, a non-finite score, or bad ``reps``/``confidence``.
    """
    tasks = _checked_tasks(scores_per_task, reps, confidence, "stratified_bootstrap_iqm")

    point = iqm([s.mean() for s in tasks])
    rng = np.random.default_rng(seed)
    # One column per task: the mean of a resample of that task's episodes.
    boot_means = np.empty((reps, len(tasks)))  # (reps, tasks)
    for t, s in enumerate(tasks):
        idx = rng.integers(0, s.size, size=(reps, s.size))  # (reps, episodes of task t)
        boot_means[:, t] = s[idx].mean(axis=1)
    replicates = iqm(boot_means, axis=1)  # (reps,)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(replicates, [100 * alpha, 100 * (1 - alpha)])
    return Interval(iqm=point, ci_low=float(low), ci_high=float(high))


def episode_bootstrap_iqm(
    scores: Sequence[Sequence[float]] | np.ndarray,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """rliable's aggregate: IQM of the flattened (episodes x tasks) matrix, with a stratified bootstrap interval.

    Args:
        scores: one sequence of per-episode (normalised) scores per task, all of the same length (rliable's
            score matrix, transposed: ``scores[t][e]`` is episode ``e`` of task ``t``).
        reps: bootstrap replicates.
        confidence: size of the interval (0.95: the 2.5th to the 97.5th percentile).
        seed: seed of the resampling; the same seed gives the same interval.

    Returns:
        :class:`Interval`: the point estimate on the data and the percentile bounds of the replicates.

    Raises:
        ValueError: no task, tasks with different numbers of episodes (the matrix is ragged), a task with no
            episode, a non-finite score, or bad ``reps``/``confidence``.
    """
    tasks = _checked_tasks(scores, reps, confidence, "episode_bootstrap_iqm")
    sizes = {s.size for s in tasks}
    if len(sizes) != 1:
        raise ValueError(
            f"episode_bootstrap_iqm: expected the same number of episodes for every task, got {sorted(sizes)}"
        )
    matrix = np.stack(tasks, axis=1)  # (episodes, tasks)
    n, k = matrix.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(reps, n, k))  # (reps, episodes, tasks): episodes drawn within each task
    resampled = matrix[idx, np.arange(k)]  # (reps, episodes, tasks)
    replicates = iqm(resampled.reshape(reps, n * k), axis=1)  # (reps,)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(replicates, [100 * alpha, 100 * (1 - alpha)])
    return Interval(iqm=iqm(matrix), ci_low=float(low), ci_high=float(high))


def _checked_tasks(
    scores: Sequence[Sequence[float]] | np.ndarray, reps: int, confidence: float, who: str
) -> list[np.ndarray]:
    """The per-task score arrays, after checking them and the bootstrap settings (``ValueError`` naming ``who``)."""
    if len(scores) == 0:
        raise ValueError(f"{who}: expected at least one task, got none")
    if not isinstance(reps, int) or reps <= 0:
        raise ValueError(f"{who}: reps must be a positive int, got {reps!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"{who}: confidence must be in (0, 1), got {confidence!r}")
    tasks = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores]
    for t, s in enumerate(tasks):
        if s.size == 0:
            raise ValueError(f"{who}: task {t} has no episode scores")
        if not np.isfinite(s).all():
            raise ValueError(f"{who}: task {t} has non-finite scores: {s}")
    return tasks
