"""Input normalisation: per-task statistics of real-valued observation fields and rewards, stored with the model.

A robot arm's observation holds positions in metres whose useful differences are millimetres, next to a reward
of up to 10: fed raw through one linear layer, the small differences barely move the embedding. Standardising
each value with its training-data mean and standard deviation (as Stable-Baselines3's ``VecNormalize`` does, but
with fixed statistics, saved in the model's ``config.json``) made a tiny JAT learn Meta-World tasks it did not
learn raw in the same number of steps.

``JatConfig.input_normalization`` holds ``{task name: {field name or "rewards": {"mean": [...], "std": [...]}}}``
(flat lists of the field's ``prod(shape)`` values). The processor applies it, to training batches and to the
agent's observations alike, so a model always sees the inputs it was trained on. A task or field without an entry
is left raw: the published checkpoint (trained raw) carries none. Only floating-point fields are normalised
(images, integers and strings never are).

Example::

    stats = {"metaworld-reach": {"continuous_observations": field_stats(obs),    # obs: (steps, 39)
                                 "rewards": field_stats(rewards)}}               # rewards: (steps,)
    config = JatConfig.from_preset("tiny", input_normalization=stats)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The key of the rewards' statistics next to a task's field names.
REWARDS = "rewards"
#: A standard deviation below this (a constant or nearly constant value) is raised to it, so that a value that
#: never moved in the data stays near 0 instead of exploding when it moves a little in play.
MIN_STD = 1e-2
#: Normalised values are clipped to [-CLIP, CLIP] (a state far outside the data's range stays finite and bounded).
CLIP = 10.0


def normalizable(dtype: str) -> bool:
    """Whether a field of this ``FieldSpec.dtype`` is normalised (floating-point values only)."""
    return dtype.startswith("float")


class Moments:
    """Running per-value sums of a field's values, for :meth:`stats` (float64: exact enough over millions of steps).

    Args:
        size: values per step (``prod(field.shape)``; 1 for rewards).
    """

    def __init__(self, size: int) -> None:
        self.count = 0
        self.sum = np.zeros(size, dtype=np.float64)
        self.sum_sq = np.zeros(size, dtype=np.float64)

    def add(self, values: Any) -> None:
        """Add ``(steps, *shape)`` values (any array-like of numbers)."""
        x = np.asarray(values, dtype=np.float64).reshape(-1, self.sum.shape[0])  # (steps, size)
        self.count += x.shape[0]
        self.sum += x.sum(0)
        self.sum_sq += (x * x).sum(0)

    def stats(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` of what was added; the std is at least :data:`MIN_STD`."""
        if self.count == 0:
            raise ValueError("no values to take statistics of")
        mean = self.sum / self.count
        var = np.maximum(self.sum_sq / self.count - mean * mean, 0.0)
        return {"mean": mean.tolist(), "std": np.maximum(np.sqrt(var), MIN_STD).tolist()}


def field_stats(values: Any) -> dict[str, list[float]]:
    """``{"mean", "std"}`` of ``(steps, *shape)`` values (see :class:`Moments`)."""
    arr = np.asarray(values, dtype=np.float64)
    moments = Moments(int(np.prod(arr.shape[1:], dtype=np.int64)))
    moments.add(arr)
    return moments.stats()


def normalize(values: np.ndarray, stats: dict[str, list[float]], *, where: str) -> np.ndarray:
    """``(values - mean) / std``, clipped to ``[-CLIP, CLIP]``, as float32.

    Args:
        values: ``(..., *shape)`` numbers whose trailing dimensions hold ``len(stats["mean"])`` values.
        stats: one entry of ``input_normalization``.
        where: names the task and field in the error.

    Returns:
        The normalised values, same shape.

    Raises:
        ValueError: the values do not end in the statistics' size.
    """
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = np.asarray(stats["std"], dtype=np.float32)
    arr = np.asarray(values, dtype=np.float32)
    size = mean.shape[0]
    if arr.size % size:
        raise ValueError(f"{where}: the model's input normalisation has {size} values per step, got shape {arr.shape}")
    out = np.clip((arr.reshape(-1, size) - mean) / std, -CLIP, CLIP)  # (steps, size)
    return out.reshape(arr.shape).astype(np.float32, copy=False)


def check(value: Any) -> str | None:
    """What is wrong with an ``input_normalization`` value, or ``None`` when it is well formed."""
    if not isinstance(value, dict):
        return "a dict {task: {field: {'mean': [...], 'std': [...]}}}"
    for task, fields in value.items():
        if not isinstance(task, str) or not isinstance(fields, dict):
            return f"{task!r}: a dict {{field: {{'mean': [...], 'std': [...]}}}}"
        for name, stats in fields.items():
            ok = isinstance(stats, dict) and set(stats) == {"mean", "std"}
            mean, std = (stats.get("mean"), stats.get("std")) if ok else (None, None)
            if not ok or not isinstance(mean, list) or not isinstance(std, list) or len(mean) != len(std) or not mean:
                return f"{task!r} field {name!r}: {{'mean': [...], 'std': [...]}} of equal, non-zero length"
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in mean + std) or min(std) <= 0:
                return f"{task!r} field {name!r}: finite means and positive standard deviations"
    return None
