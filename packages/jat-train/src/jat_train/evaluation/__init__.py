"""The evaluation room: ``jat-eval``, its scores and results, and ``jat-report``.

What it owns:

- :mod:`~jat_train.evaluation.evaluate`: :func:`~jat_train.evaluation.evaluate.evaluate` and ``jat-eval``'s
  ``main``;
- :mod:`~jat_train.evaluation.policies`, :mod:`~jat_train.evaluation.rollouts`,
  :mod:`~jat_train.evaluation.taskpool` and :mod:`~jat_train.evaluation.video`: batched policies played in vector
  envs, whole tasks in worker processes, episode GIFs;
- :mod:`~jat_train.evaluation.scores`, :mod:`~jat_train.evaluation.results`,
  :mod:`~jat_train.evaluation.datascore`: IQMs with bootstrap intervals, the results dict and its files,
  data-normalised scores;
- :mod:`~jat_train.evaluation.textscore` and :mod:`~jat_train.evaluation.completions`: held-out scores of the
  tasks without an env;
- :mod:`~jat_train.evaluation.report` and :mod:`~jat_train.evaluation.plots`: ``jat-report`` and its figures.

What it may import: the data room's interface (``jat_train.data``: local data for text and data scores), the
training room's interface (``jat-report`` reads the run log through :mod:`jat_train.training.runlog`) and the
shared top-level module :mod:`jat_train.files`.

Its interface, the modules of ``INTERFACE`` below: ``evaluate`` (``evaluate``: the training loop's periodic
evaluation; ``main``: :mod:`jat_train.cli`), ``report`` (``jat-report``'s ``main``) and ``datascore``
(``data_return``: :mod:`jat_train.generalist`). This package re-exports nothing.
"""

# modules of this room another room may import; the rooms whose interfaces this room's modules may import.
# tests/train/test_rooms.py reads both.
INTERFACE = ("evaluate", "report", "datascore")
MAY_IMPORT = ("data", "training")
