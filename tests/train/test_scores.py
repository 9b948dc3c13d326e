"""IQM and the stratified bootstrap confidence interval."""

from __future__ import annotations

import numpy as np
import pytest
from jat_train.evaluation.scores import iqm, stratified_bootstrap_iqm
from scipy.stats import trim_mean


def test_iqm_on_known_numbers():
    # 8 values: the lowest 2 and highest 2 are dropped; mean of 3, 4, 5, 6.
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5)
    assert iqm([2.0]) == 2.0
    # Fewer than 4 values: nothing is trimmed, it is the mean.
    assert iqm([0.0, 1.0, 5.0]) == pytest.approx(2.0)
    x = np.random.default_rng(0).normal(size=(5, 12))
    np.testing.assert_allclose(iqm(x, axis=1), trim_mean(x, 0.25, axis=1))
    with pytest.raises(ValueError, match="empty"):
        iqm([])


def test_point_estimate_is_iqm_of_task_means_and_ci_contains_it():
    rng = np.random.default_rng(1)
    tasks = [
        rng.normal(mu, 0.2, size=n) for mu, n in zip([0.1, 0.5, 0.9, 1.0, 0.3, 0.7], [10, 5, 20, 10, 3, 8])
    ]
    est = stratified_bootstrap_iqm(tasks, reps=500, seed=0)
    assert est.iqm == pytest.approx(iqm([t.mean() for t in tasks]))
    assert est.ci_low < est.iqm < est.ci_high
    assert est.ci_high - est.ci_low < 0.5


def test_bootstrap_is_deterministic_for_a_seed():
    tasks = [[0.0, 1.0, 0.5], [0.2, 0.9], [1.0, 0.0, 0.0, 1.0]]
    a = stratified_bootstrap_iqm(tasks, reps=300, seed=7)
    assert a == stratified_bootstrap_iqm(tasks, reps=300, seed=7)
    assert a != stratified_bootstrap_iqm(tasks, reps=300, seed=8)


def test_bootstrap_resamples_within_tasks_only():
    # Tasks with constant episode scores have no within-task variance: every replicate equals the point
    # estimate (a bootstrap over tasks would vary).
    est = stratified_bootstrap_iqm([[0.0] * 4, [1.0] * 3, [0.5] * 5, [0.2] * 2], reps=200, seed=0)
    assert est.ci_low == est.iqm == est.ci_high == pytest.approx(iqm([0.0, 1.0, 0.5, 0.2]))


def test_interval_narrows_with_more_episodes():
    rng = np.random.default_rng(3)
    few = [rng.normal(0.5, 0.3, size=5) for _ in range(4)]
    many = [rng.normal(0.5, 0.3, size=500) for _ in range(4)]
    w_few = stratified_bootstrap_iqm(few, reps=400, seed=0)
    w_many = stratified_bootstrap_iqm(many, reps=400, seed=0)
    assert (w_many.ci_high - w_many.ci_low) < (w_few.ci_high - w_few.ci_low) / 3


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least one task"):
        stratified_bootstrap_iqm([])
    with pytest.raises(ValueError, match="task 1 has no episode"):
        stratified_bootstrap_iqm([[1.0], []])
    with pytest.raises(ValueError, match="non-finite"):
        stratified_bootstrap_iqm([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="reps"):
        stratified_bootstrap_iqm([[1.0]], reps=0)
