"""``jat_train.evaluate``, the path the docs gave before jat-train's rooms; the code lives in
:mod:`jat_train.evaluation.evaluate`."""

from jat_train.evaluation.evaluate import evaluate, load_model

__all__ = ["evaluate", "load_model"]
