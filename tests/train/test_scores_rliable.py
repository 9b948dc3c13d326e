"""The paper's aggregate (rliable's IQM over the episodes x tasks matrix) gives rliable's own numbers.

rliable does not import on this stack, so its numbers were computed once by bench/rliable_fixtures.py (in a venv
with rliable 1.2.0, arch 7.2.0, pandas 1.5.3, numpy 1.26.4; 50000 replicates) on the matrices rebuilt here. The
point estimate is exact; the interval bounds are Monte-Carlo estimates (another generator draws the replicates),
so they agree to within a few thousandths at 50000 replicates.
"""

from pathlib import Path

import numpy as np
import pytest
from jat_train.evaluation.scores import episode_bootstrap_iqm, iqm, stratified_bootstrap_iqm

RLIABLE = {  # name: (IQM, 2.5th percentile, 97.5th percentile), from bench/rliable_fixtures.py
    "normal_20x5": (0.552888, 0.479529, 0.628634),
    "beta_10x12": (0.698525, 0.648108, 0.744183),
    "skewed_20x3": (1.259420, 0.964277, 1.745378),
}


def _matrices() -> dict[str, np.ndarray]:
    path = Path(__file__).parents[2] / "bench" / "rliable_fixtures.py"
    source = path.read_text()
    # the fixture script imports rliable at its top; run only its matrices() definition here
    namespace: dict = {"np": np}
    start = source.index("def matrices()")
    end = source.index("def main()")
    exec(compile(source[start:end], str(path), "exec"), namespace)
    return namespace["matrices"]()


@pytest.mark.parametrize("name", sorted(RLIABLE))
def test_episode_iqm_matches_rliable(name):
    matrix = _matrices()[name]  # (episodes, tasks)
    point, low, high = RLIABLE[name]
    got = episode_bootstrap_iqm(matrix.T, reps=50000, seed=0)
    assert got.iqm == pytest.approx(point, abs=1e-6)
    width = high - low
    assert got.ci_low == pytest.approx(low, abs=0.02 * width + 2e-3)
    assert got.ci_high == pytest.approx(high, abs=0.02 * width + 2e-3)


def test_episode_iqm_trims_the_flattened_matrix_not_the_task_means():
    # task 0 has one outlier episode: the flattened trim drops it, the per-task means keep it inside task 0's mean
    scores = [[0.0, 0.0, 0.0, 100.0], [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0]]
    flat = episode_bootstrap_iqm(scores, reps=200)
    per_task = stratified_bootstrap_iqm(scores, reps=200)
    assert flat.iqm == pytest.approx(iqm(np.asarray(scores).reshape(-1)))
    assert flat.iqm == pytest.approx(1.75)  # the middle 8 of 16 sorted values: 1, 1, 1, 2, 2, 2, 2, 3
    assert per_task.iqm == pytest.approx(iqm([25.0, 1.0, 2.0, 3.0]))  # 2.5
    assert flat.ci_low <= flat.iqm <= flat.ci_high


def test_episode_iqm_is_seeded_and_refuses_ragged_matrices():
    scores = np.random.default_rng(1).normal(size=(4, 10))
    assert episode_bootstrap_iqm(scores, reps=300, seed=3) == episode_bootstrap_iqm(scores, reps=300, seed=3)
    with pytest.raises(ValueError, match="same number of episodes"):
        episode_bootstrap_iqm([[1.0, 2.0], [1.0]])
    with pytest.raises(ValueError, match="non-finite"):
        episode_bootstrap_iqm([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="at least one task"):
        episode_bootstrap_iqm([])
