"""Local data sets of tasks without an env: ``jat-collect`` writes the rows of a task's ``samples`` source.

A task with ``TaskSpec.samples`` (text read from files, procedurally drawn image-caption pairs, any data set a
plugin can produce on this machine) is collected like an RL task, in the same schema as its hub configuration
(:func:`jat_train.collection.schema.features_for`: one row per sample, one column per field)::

    jat-collect --tasks text-local,captions-shapes --episodes 2000 --out data/ [--input-dir FOLDER]

``--episodes N`` keeps the first ``N`` rows of the source (all of them when it holds fewer); the last
``--test-fraction`` of them form the ``test`` split. Every value is checked against its field spec before
anything is written (a row with a missing field, a non-string text or a wrongly shaped image is refused, naming
the task, the row and the field), and the data set is written atomically (:func:`jat_train.collection.store.write_data`).
Nothing here knows a modality: the fields say what each column holds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from jat_core.specs import TaskSpec, check_field_value

from jat_train.collection.schema import encode_column, split_dataset, split_sizes
from jat_train.collection.store import check_destination, write_data


@dataclass(frozen=True)
class SampleSummary:
    """What one task's sample collection produced: where, and how many rows in each split."""

    task: str
    path: str | None
    train_samples: int
    test_samples: int
    asked: int

    def line(self) -> str:
        """One human-readable line."""
        where = f" -> {self.path}" if self.path else ""
        short = "" if self.train_samples + self.test_samples >= self.asked else f" (the source holds no more; {self.asked} asked)"
        return f"{self.task}: {self.train_samples} train + {self.test_samples} test samples{where}{short}"


def _check_row(task: TaskSpec, index: int, row: Any) -> dict[str, Any]:
    """One row of a source, checked against the task's fields (``ValueError`` naming the task, row and field)."""
    if not isinstance(row, dict):
        raise ValueError(f"task {task.name!r} sample {index}: expected a dict of field values, got {type(row).__name__}")
    missing = [f.name for f in task.fields if f.name not in row]
    if missing:
        raise ValueError(f"task {task.name!r} sample {index}: no value for field(s) {missing} (got {sorted(row)})")
    for f in task.fields:
        try:
            check_field_value(f, row[f.name], task=task.name)
        except ValueError as exc:
            raise ValueError(f"{exc} (sample {index})") from None
    return {f.name: encode_column(f, [row[f.name]])[0] for f in task.fields}


def collect_samples(
    task: TaskSpec,
    count: int,
    seed: int = 0,
    *,
    input_dir: str | None = None,
    test_fraction: float = 0.1,
    progress: bool = True,
):
    """The first ``count`` rows of ``task.samples(seed=seed, input_dir=input_dir)`` as a ``datasets.DatasetDict``
    (``train``, then the last ``test_fraction`` of the rows as ``test``).

    Raises:
        ValueError: the task has no ``samples`` source, ``count < 1``, the source yields nothing, or a row does not
            match the task's fields (naming the task, the row and the field).
    """
    from tqdm.auto import tqdm

    if count < 1:
        raise ValueError(f"--episodes: expected a positive number of samples, got {count}")
    if task.samples is None:
        raise ValueError(f"task {task.name!r} has no local sample source (TaskSpec.samples)")
    rows = []
    source = task.samples(seed=seed, input_dir=input_dir)
    for index, row in enumerate(tqdm(itertools.islice(source, count), total=count, desc=task.name,
                                     unit="sample", disable=not progress)):
        rows.append(_check_row(task, index, row))
    if not rows:
        raise ValueError(f"task {task.name!r}: its sample source gave no sample")
    n_train, _ = split_sizes(len(rows), test_fraction)
    return split_dataset(task, rows, n_train)


def collect_samples_to_disk(task: TaskSpec, count: int, out: str, seed: int = 0, **kwargs: Any) -> SampleSummary:
    """:func:`collect_samples`, then write ``out/<task>/`` atomically (the previous data set stays until the new
    one is written and loads back). ``kwargs`` go to :func:`collect_samples`."""
    check_destination(task, out)
    data = collect_samples(task, count, seed, **kwargs)
    path = write_data(task, data, out)
    return SampleSummary(task.name, path, len(data["train"]), len(data["test"]), count)
