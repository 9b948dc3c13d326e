"""Aggregate scores: interquartile mean (IQM) with a 95% stratified bootstrap confidence interval.

This is the aggregate the JAT paper reports (rliable's method, Agarwal et al. 2021), written with numpy and
``scipy.stats.trim_mean``:

- Point estimate: for each task, the mean of its episodes' normalised returns; then the IQM over tasks of
  these per-task means (``trim_mean(x, 0.25)``: the mean of the middle 50%).
- Confidence interval: a stratified bootstrap. Each replicate resamples, **within each task** (the strata),
  that task's episodes with replacement, as many as it has; recomputes each task's mean; then takes the IQM
  over tasks. The interval is the 2.5th and 97.5th percentiles of the replicates (the percentile method,
  rliable's default). The set of tasks is never resampled: the interval says how much the score would move
  with other evaluation episodes of the same tasks.

rliable itself takes a (runs x tasks) matrix and trims the flattened matrix; here the "runs" of a task are
its evaluation episodes, which are summarised by their mean first (as the paper's per-task normalised score),
so that a domain's IQM is the IQM of the per-task scores the paper tabulates.
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
    """IQM over tasks of the per-task mean score, with a stratified bootstrap confidence interval.

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
    if len(scores_per_task) == 0:
        raise ValueError("stratified_bootstrap_iqm: expected at least one task, got none")
    if not isinstance(reps, int) or reps <= 0:
        raise ValueError(f"stratified_bootstrap_iqm: reps must be a positive int, got {reps!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"stratified_bootstrap_iqm: confidence must be in (0, 1), got {confidence!r}")
    tasks = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores_per_task]
    for t, s in enumerate(tasks):
        if s.size == 0:
            raise ValueError(f"stratified_bootstrap_iqm: task {t} has no episode scores")
        if not np.isfinite(s).all():
            raise ValueError(f"stratified_bootstrap_iqm: task {t} has non-finite scores: {s}")

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
