"""Console scripts: ``jat-train``, ``jat-eval``, ``jat-collect``."""

from __future__ import annotations


def train_main(argv: list[str] | None = None) -> int:
    """``jat-train``."""
    raise SystemExit("jat-train: not implemented yet")


def eval_main(argv: list[str] | None = None) -> int:
    """``jat-eval``."""
    raise SystemExit("jat-eval: not implemented yet")


def collect_main(argv: list[str] | None = None) -> int:
    """``jat-collect``."""
    raise SystemExit("jat-collect: not implemented yet")
