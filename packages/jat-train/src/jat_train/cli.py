"""Console scripts: ``jat-train``, ``jat-eval``, ``jat-collect``, each calling its room's ``main`` (an interface module).

Each runs through :func:`jat_core.cli.run_console_script` (in its module's ``main``): a user error is one line on
stderr and exit status 2; ``--debug`` or ``JAT_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations


def train_main(argv: list[str] | None = None) -> int:
    """``jat-train``: train a JAT model (see :func:`jat_train.training.trainer.main`)."""
    from jat_train.training.trainer import main

    return main(argv)


def eval_main(argv: list[str] | None = None) -> int:
    """``jat-eval``: evaluate a model or a reference policy (see :func:`jat_train.evaluation.evaluate.main`)."""
    from jat_train.evaluation.evaluate import main

    return main(argv)


def collect_main(argv: list[str] | None = None) -> int:
    """``jat-collect``: roll out experts (or a given policy) and save episodes in the jat-dataset schema.

    See :mod:`jat_train.collection.collect`; ``jat-collect --help`` lists the options.
    """
    from jat_train.collection.collect import main

    return main(argv)
