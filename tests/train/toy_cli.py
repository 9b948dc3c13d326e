"""Run a ``jat-*`` console script with the inline toy domain as its only plugin, in a process of its own:
``python toy_cli.py jat-train ARGS...`` (the full-disk tests run it on a tmpfs, see ``diskfull.py``).

The task is :func:`trainkit.toy_task` with the toy env, a fixed expert and reference scores, so that every
command has something to collect, evaluate, normalise and plot.
"""

import dataclasses
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # trainkit, and the tests' shared helpers (filekit)

import jat_core.plugins  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from jat_core import Scores  # noqa: E402
from trainkit import ACT, ToyEnv, toy_registry, toy_task  # noqa: E402


def expert(env):
    """A fixed action: the data are the same on every run."""
    return lambda observation: np.full(ACT, 0.25, np.float32)


def task():
    """The toy task every command of these tests works on."""
    return dataclasses.replace(toy_task(), make_env=ToyEnv.make, expert=expert,
                               scores=Scores(random=-10.0, expert=-2.5))


def load_plugins(names=None):
    """What ``jat_core.plugins.load_plugins`` gives the commands here: the codecs and the toy domain."""
    return toy_registry(task())


#: ``jat-eval`` on the toy task with a random policy (add ``--out``)
EVAL = ["--tasks", "toy-reach", "--episodes", "2", "--no-progress", "--device", "cpu", "--policy", "random"]


#: the text of ``extra.md``, for a report that differs from the first one (``jat-report --extra extra.md``)
EXTRA = "Written again."


def make_seed(root) -> None:
    """What the fault tests start from, in ``root``: local data (``data``), a 4-step run with checkpoints 2 and 4
    (``run``), a collected data set (``collected``, 3 episodes), an evaluation (``eval``) and a report
    (``report``), and ``extra.md`` (:data:`EXTRA`). Runs the commands in this process, with
    ``jat_core.plugins.load_plugins`` set to :func:`load_plugins` while they run."""
    from trainkit import train_argv, write_task

    cwd, plugins = os.getcwd(), jat_core.plugins.load_plugins
    jat_core.plugins.load_plugins = load_plugins
    try:
        os.chdir(root)
        write_task("data", task(), [5, 9, 2, 13, 6, 17, 8])
        assert main("jat-train", train_argv("data", "run")) == 0
        assert main("jat-collect", ["--tasks", "toy-reach", "--episodes", "3", "--out", "collected",
                                    "--no-progress"]) == 0
        assert main("jat-eval", [*EVAL, "--out", "eval"]) == 0
        assert main("jat-report", ["--run", "run", "--eval", "eval", "--out", "report"]) == 0
        with open("extra.md", "w") as f:
            f.write(EXTRA + "\n")
    finally:
        os.chdir(cwd)
        jat_core.plugins.load_plugins = plugins


def main(prog: str, argv: list[str]) -> int:
    """Run the console script ``prog`` (with whatever plugins ``jat_core.plugins.load_plugins`` gives)."""
    from jat_train.collection import collect
    from jat_train.evaluation import evaluate, report
    from jat_train.training import trainer

    commands = {"jat-train": trainer.main, "jat-collect": collect.main, "jat-eval": evaluate.main,
                "jat-report": report.main}
    return commands[prog](argv)


if __name__ == "__main__":
    torch.set_num_threads(1)
    jat_core.plugins.load_plugins = load_plugins
    sys.exit(main(sys.argv[1], sys.argv[2:]))
