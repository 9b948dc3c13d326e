"""The evaluation room: ``jat-eval``, its scores and results, and ``jat-report``."""
