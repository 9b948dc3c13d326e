"""Reference scores of the published tasks, shipped with the package (``data/reference_scores.csv``).

One row per RL task: the mean (and std) return of a random policy and of the expert that produced the task's
data set, plus the human mean for Atari, as the reference JAT evaluation uses them.

One row cannot normalise: ``atari-venture``, whose expert scored 0, as a random policy does. (The reference then
counts every Venture score as 1.0 expert-normalised.) :class:`jat_core.Scores` refuses ``expert == random``, so
such a task gets no scores (``None``): its returns are reported raw, and it is left out of normalised aggregates.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
from importlib import resources

from jat_core.specs import Scores

_CSV = "reference_scores.csv"


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


@functools.cache
def load_scores() -> dict[str, Scores | None]:
    """All reference scores, by task name (read once, with :mod:`importlib.resources`).

    A task whose expert and random means are equal maps to ``None`` (see the module docstring).
    """
    text = resources.files("jat_envs").joinpath("data", _CSV).read_text(encoding="utf-8")
    out: dict[str, Scores] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if float(row["expert_mean"]) == float(row["random_mean"]):
            out[row["task"]] = None
            continue
        out[row["task"]] = Scores(
            random=float(row["random_mean"]),
            expert=float(row["expert_mean"]),
            human=_number(row["human_mean"]),
            random_std=_number(row["random_std"]),
            expert_std=_number(row["expert_std"]),
        )
    return out


def scores_for(task: str, source: str | None = None) -> Scores | None:
    """The reference scores of one task (``None`` when they cannot normalise, see the module docstring).

    Args:
        task: the task name.
        source: a note on where the constants come from and how this package's local expert differs
            (:attr:`jat_core.specs.Scores.source`).

    Raises:
        KeyError: the task has no row in the reference table.
    """
    try:
        scores = load_scores()[task]
    except KeyError:
        raise KeyError(f"no reference scores for task {task!r} in jat_envs/data/{_CSV}") from None
    return scores if scores is None or source is None else dataclasses.replace(scores, source=source)
