"""The schema of a collected data set, and how collected values are encoded into it.

A task's data set has exactly the columns and types of its configuration of the hub data set
``jat-project/jat-dataset``: one row per episode (RL tasks: one column per field, each a sequence over the
episode's steps, plus ``rewards``) or per sample (tasks without actions: one column per field). How one value of a
field is stored follows from the field spec alone (:attr:`jat_core.specs.FieldSpec.storage`: a string, a PNG or
an array of numbers), so nothing here knows a domain or a modality. Splits: ``train``, then the last
``test_fraction`` of the rows as ``test`` (:func:`split_sizes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from jat_core.specs import PNG_STORAGE, STRING_STORAGE, FieldSpec, TaskSpec

from jat_train.data import REWARDS


def value_feature(field: FieldSpec):
    """The ``datasets`` feature of one value of a field (one step of an RL field, one sample of a text field).

    By :attr:`FieldSpec.storage`: a string -> ``Value("string")``; a PNG -> ``Image()``; a scalar ->
    ``Value(dtype)``; an array -> nested ``Sequence``s of ``Value(dtype)`` (variable length, as the hub data).
    """
    import datasets

    if field.storage == STRING_STORAGE:
        return datasets.Value("string")
    if field.storage == PNG_STORAGE:
        return datasets.Image()
    feature = datasets.Value(field.dtype)
    for _ in field.shape:
        feature = datasets.Sequence(feature)
    return feature


def features_for(task: TaskSpec):
    """The ``datasets.Features`` of a task's data set: one row per episode (RL) or per sample (text).

    RL tasks: each observation field and the action field is a ``Sequence`` over the episode's steps of
    :func:`value_feature`, plus ``rewards``, a ``Sequence(Value("float32"))``. Text tasks: one
    :func:`value_feature` per field.
    """
    import datasets

    if not task.is_rl:
        return datasets.Features({f.name: value_feature(f) for f in task.fields})
    columns = {f.name: datasets.Sequence(value_feature(f)) for f in task.fields}
    columns[REWARDS] = datasets.Sequence(datasets.Value("float32"))
    return datasets.Features(columns)


def encode_column(field: FieldSpec, values: list) -> Any:
    """A list of values of a field (one episode's steps, or one sample's value in a list), in the form
    ``datasets`` stores for :func:`value_feature`: strings, PNG-encoded images, or one ``(T, *shape)`` array."""
    if field.storage == STRING_STORAGE:
        return [str(v) for v in values]
    if field.storage == PNG_STORAGE:
        import datasets

        png = datasets.Image()
        return [png.encode_example(np.asarray(v, dtype=np.uint8)) for v in values]
    return np.asarray(values, dtype=field.dtype)  # (T, *shape)


def encode_episode(task: TaskSpec, steps: dict[str, list]) -> dict[str, Any]:
    """One episode's per-step values by column (each field's and ``rewards``) -> its row of the data set."""
    row = {f.name: encode_column(f, steps[f.name]) for f in task.fields}
    row[REWARDS] = np.asarray(steps[REWARDS], dtype=np.float32)  # (T,)
    return row


def to_dataset(rows: list[dict[str, Any]], features):
    """A ``datasets.Dataset`` of encoded rows (possibly none: an empty split keeps the schema)."""
    import datasets

    if not rows:
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.Dataset.from_list(rows, features=features)


def split_sizes(episodes: int, test_fraction: float) -> tuple[int, int]:
    """``(train, test)`` episode counts: the last ``test_fraction`` (at least 1 when ``episodes >= 2``) is test."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    n_test = 0
    if episodes >= 2 and test_fraction > 0:
        n_test = min(episodes - 1, max(1, round(episodes * test_fraction)))
    return episodes - n_test, n_test


def split_dataset(task: TaskSpec, rows: list[dict[str, Any]], n_train: int):
    """The task's ``datasets.DatasetDict`` of encoded rows: the first ``n_train`` as ``train``, the rest as
    ``test`` (either possibly empty, and typed all the same), with the features of :func:`features_for`."""
    import datasets

    features = features_for(task)
    return datasets.DatasetDict(
        {"train": to_dataset(rows[:n_train], features), "test": to_dataset(rows[n_train:], features)}
    )
