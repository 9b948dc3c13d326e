"""jat-train: training (accelerate), local expert data collection and evaluation for JAT.

Four rooms, one subpackage each, each opening with what it owns, what it may import and its interface:

- :mod:`jat_train.data`: episodes, windows, batches and their loader (the floor: it imports no other room);
- :mod:`jat_train.training`: ``jat-train``, its settings, checkpoints, log and input statistics;
- :mod:`jat_train.collection`: ``jat-collect``, the data-set schema, its store and the data cache;
- :mod:`jat_train.evaluation`: ``jat-eval``, rollouts, scores, results, ``jat-report``.

A room imports another only through that room's interface (tests/train/test_rooms.py checks every import).
The modules at this level belong to no single room, by what imports them:

- :mod:`jat_train.files` and :mod:`jat_train.run_lock`, the project's I/O safety (atomic writes, one run per
  output folder): training, collection and evaluation all write through them, so they sit below every room and
  import none (``SHARED`` below);
- :mod:`jat_train.generalist` and :mod:`jat_train.phases`: ``jat-generalist``, the orchestration over every room
  (collect with the cache, train, evaluate, report) and its phase clock;
- :mod:`jat_train.cli`: the console scripts ``jat-train``, ``jat-eval`` and ``jat-collect``; it only parses and
  calls each room's ``main``;
- ``trainer``, ``train_config``, ``evaluate``, ``store`` and ``schema``: the import paths the docs gave before the
  rooms (``python -m jat_train.trainer`` in launch scripts, ``jat_train.trainer.train``...), kept working; each
  takes its names from the room's interface.
"""

__version__ = "0.1.0"

# top-level modules every room may import: they import no room (tests/train/test_rooms.py checks both)
SHARED = ("files", "run_lock")
