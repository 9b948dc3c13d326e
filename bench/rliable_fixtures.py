"""Print rliable's IQM and 95% stratified-bootstrap interval for the fixed score matrices of
tests/train/test_scores_rliable.py, to paste there as the expected values.

rliable (1.2.0) needs arch, whose releases for it fail to import with pandas >= 2, so this runs in its own venv:
    python3 -m venv /tmp/rl && /tmp/rl/bin/pip install rliable "pandas<2" "numpy<2" "scipy<1.14"
    /tmp/rl/bin/python bench/rliable_fixtures.py
"""

import numpy as np
from rliable import library as rly
from rliable import metrics


def matrices() -> dict[str, np.ndarray]:
    """The fixed (episodes, tasks) matrices: same seeds, same values in the test."""
    rng = np.random.default_rng(20261207)
    return {
        "normal_20x5": rng.normal(0.6, 0.4, size=(20, 5)).round(4),
        "beta_10x12": rng.beta(2.0, 1.0, size=(10, 12)).round(4),
        "skewed_20x3": np.exp(rng.normal(0.0, 1.0, size=(20, 3))).round(4),
    }


def main() -> None:
    """Print name, point estimate and interval bounds of each matrix (50000 replicates)."""
    for name, m in matrices().items():
        point, ci = rly.get_interval_estimates(
            {name: m}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=50000,
            random_state=np.random.RandomState(0),
        )
        print(f'"{name}": ({point[name][0]:.6f}, {ci[name][0][0]:.6f}, {ci[name][1][0]:.6f}),')


if __name__ == "__main__":
    main()
