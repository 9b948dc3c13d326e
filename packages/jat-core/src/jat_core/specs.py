"""Task and field specifications: plain frozen dataclasses that validate themselves.

A :class:`FieldSpec` describes one observation or action field, named like its data-set column. A
:class:`TaskSpec` describes one task: its fields, how to make its environment, its reference scores, its data
set, and its weights. Mistakes (a negative dimension, an unknown dtype, a discrete field without ``n``) raise
``ValueError`` at construction, naming the task and field, not a crash deep inside training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: dtypes a field may have; ``string`` is for text fields (one string per step or per sample).
DTYPES = ("float32", "float64", "int64", "int32", "uint8", "bool", "string")

#: How a data set stores one value of a field (:attr:`FieldSpec.storage`): a string, a lossless PNG, or an array
#: of numbers (nested lists, one level per dimension).
STRING_STORAGE, PNG_STORAGE, ARRAY_STORAGE = "string", "png", "array"
#: channel counts of a ``uint8`` ``(height, width, channels)`` field stored as PNG: the ones PNG holds
#: losslessly (grey, RGB, RGBA)
PNG_CHANNELS = (1, 3, 4)


def _fail(owner: str, msg: str) -> None:
    raise ValueError(f"{owner}: {msg}")


@dataclass(frozen=True)
class FieldSpec:
    """One observation, action or text field.

    Args:
        name: the data-set column, e.g. ``"continuous_observations"``, ``"discrete_actions"``.
        codec: the name of the registered codec that encodes (and decodes) this field.
        shape: the per-step shape, e.g. ``(27,)``, ``(84, 84, 4)``; ``()`` for a scalar (one discrete action,
            one string).
        dtype: one of :data:`DTYPES`.
        low, high: bounds of a continuous field (scalars), ``None`` when unbounded.
        n: number of distinct values of a discrete field (values are ``0 .. n-1``); required for ``int`` fields
            that are actions.
        max_tokens: for ``string`` fields that join a token-based codec (BabyAI's mission): the processor
            tokenizes each string with the model's tokenizer to exactly this many ids (padded / truncated).
    """

    name: str
    codec: str
    shape: tuple[int, ...] = ()
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None
    n: int | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        owner = f"FieldSpec {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            _fail("FieldSpec", f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.codec, str) or not self.codec:
            _fail(owner, f"codec must be a non-empty codec name, got {self.codec!r}")
        shape = self.shape
        if isinstance(shape, list):
            shape = tuple(shape)
            object.__setattr__(self, "shape", shape)
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            _fail(owner, f"shape must be a tuple of ints, got {self.shape!r}")
        if any(d <= 0 for d in shape):
            _fail(owner, f"shape dimensions must be positive, got {shape}")
        if self.dtype not in DTYPES:
            _fail(owner, f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.n is not None and (not isinstance(self.n, int) or self.n <= 0):
            _fail(owner, f"n must be a positive int, got {self.n!r}")
        if self.max_tokens is not None:
            if self.dtype != "string":
                _fail(owner, f"max_tokens is only for string fields, got dtype {self.dtype!r}")
            if not isinstance(self.max_tokens, int) or self.max_tokens <= 0:
                _fail(owner, f"max_tokens must be a positive int, got {self.max_tokens!r}")
        for bound in ("low", "high"):
            v = getattr(self, bound)
            if v is not None and (not isinstance(v, (int, float)) or math.isnan(v)):
                _fail(owner, f"{bound} must be a number or None, got {v!r}")
        if self.low is not None and self.high is not None and self.low > self.high:
            _fail(owner, f"low ({self.low}) must not exceed high ({self.high})")

    @property
    def size(self) -> int:
        """Number of scalar values per step (1 for a scalar field)."""
        return math.prod(self.shape) if self.shape else 1

    @property
    def storage(self) -> str:
        """How a data set stores one value of this field, decided by its dtype and shape alone (so a data set's
        schema follows from its task's fields, whatever codec reads them):

        - :data:`STRING_STORAGE` for a ``string`` field;
        - :data:`PNG_STORAGE` for a ``uint8`` ``(height, width, channels)`` field with 1, 3 or 4 channels
          (:data:`PNG_CHANNELS`): one lossless PNG per value, as the hub's ``jat-project/jat-dataset`` stores
          frames (a stack of 4 grey frames is one RGBA PNG);
        - :data:`ARRAY_STORAGE` otherwise: numbers of the field's dtype, a scalar or nested lists.
        """
        if self.dtype == "string":
            return STRING_STORAGE
        if self.dtype == "uint8" and len(self.shape) == 3 and self.shape[-1] in PNG_CHANNELS:
            return PNG_STORAGE
        return ARRAY_STORAGE


@dataclass(frozen=True)
class Scores:
    """Reference returns of a task: a random policy, the expert that produced its data, and humans (optional)."""

    random: float
    expert: float
    human: float | None = None
    random_std: float | None = None
    expert_std: float | None = None
    #: where ``random`` and ``expert`` come from, and how the expert that makes local data differs (reports show it
    #: beside expert-normalised scores)
    source: str | None = None

    def __post_init__(self) -> None:
        for name in ("random", "expert"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or math.isnan(v):
                _fail("Scores", f"{name} must be a number, got {v!r}")
        if self.expert == self.random:
            _fail("Scores", f"expert ({self.expert}) must differ from random ({self.random}) to normalise")

    def normalize(self, score: float) -> float:
        """Expert-normalised score: ``(score - random) / (expert - random)``."""
        return (score - self.random) / (self.expert - self.random)

    def human_normalize(self, score: float) -> float | None:
        """Human-normalised score, or ``None`` when no human score is known."""
        if self.human is None:
            return None
        return (score - self.random) / (self.human - self.random)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a task's episodes live.

    Args:
        repo: hub data-set repository, e.g. ``"jat-project/jat-dataset"``.
        config: its configuration (one per task), usually the task name.
        local_name: directory name under a local data root (``DIR/<local_name>/``, written by ``jat-collect``
            with ``datasets.DatasetDict.save_to_disk``); defaults to ``config``.
    """

    repo: str
    config: str
    local_name: str | None = None

    def local_path(self, root: str) -> str:
        """Path of this task's data under a local root directory."""
        import os

        return os.path.join(root, self.local_name or self.config)


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Args:
        name: unique task name, ``<domain>-<name>`` by convention (``"babyai-go-to"``).
        domain: the domain (used for grouping scores), e.g. the plugin's name.
        observation: the observation fields, in encoding order (fields sharing a codec are concatenated in this
            order before encoding). For text tasks, the text/image fields.
        action: the action field, or ``None`` for text tasks.
        make_env: ``make_env(**kwargs) -> gymnasium.Env`` with exactly the wrappers its data was collected
            under, or ``None`` (text tasks). Observations are dicts keyed by observation field name.
        scores: reference scores for normalisation, or ``None``.
        dataset: where its episodes live, or ``None``.
        loss_weight: multiplies this task's loss in training.
        sample_weight: relative probability of drawing this task's batches.
        max_episode_steps: episode limit of ``make_env``'s env (``None``: the env's own).
        expert: ``expert(env) -> policy`` where ``policy(observation) -> action``; ``None`` when no offline
            expert exists. Used by ``jat-collect``.
        context_steps: timesteps per training window (``None``: half the model's context, as the reference).
        samples: for a task without an env, how its local data set is made: ``samples(seed=0, input_dir=None)``
            returns an iterable (possibly endless) of rows ``{field name: value}``, one per sample, the same for
            the same seed; ``input_dir`` is a folder of input files for sources that read files (others ignore
            it). ``None``: its data come from the hub only. Used by ``jat-collect``.
        metadata: free-form extra facts (env id, notes).
    """

    name: str
    domain: str
    observation: tuple[FieldSpec, ...]
    action: FieldSpec | None = None
    make_env: Callable[..., Any] | None = None
    scores: Scores | None = None
    dataset: DatasetSpec | None = None
    loss_weight: float = 1.0
    sample_weight: float = 1.0
    max_episode_steps: int | None = None
    expert: Callable[..., Any] | None = None
    context_steps: int | None = None
    samples: Callable[..., Any] | None = None
    metadata: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        owner = f"TaskSpec {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            _fail("TaskSpec", f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.domain, str) or not self.domain:
            _fail(owner, f"domain must be a non-empty string, got {self.domain!r}")
        obs = self.observation
        if isinstance(obs, FieldSpec):
            obs = (obs,)
        if isinstance(obs, list):
            obs = tuple(obs)
        object.__setattr__(self, "observation", obs)
        if not isinstance(obs, tuple) or not obs or not all(isinstance(f, FieldSpec) for f in obs):
            _fail(owner, f"observation must be a non-empty tuple of FieldSpec, got {self.observation!r}")
        names = [f.name for f in obs]
        if len(set(names)) != len(names):
            _fail(owner, f"observation field names must be unique, got {names}")
        if self.action is not None:
            if not isinstance(self.action, FieldSpec):
                _fail(owner, f"action must be a FieldSpec or None, got {type(self.action).__name__}")
            if self.action.name in names:
                _fail(owner, f"action field {self.action.name!r} has the name of an observation field")
            if self.action.dtype.startswith("int") and self.action.n is None:
                _fail(owner, f"integer action field {self.action.name!r} needs n (the number of actions)")
        if self.make_env is not None and not callable(self.make_env):
            _fail(owner, "make_env must be callable or None")
        if self.expert is not None and not callable(self.expert):
            _fail(owner, "expert must be callable or None")
        if self.samples is not None and not callable(self.samples):
            _fail(owner, "samples must be callable or None")
        if self.scores is not None and not isinstance(self.scores, Scores):
            _fail(owner, f"scores must be a Scores or None, got {type(self.scores).__name__}")
        if self.dataset is not None and not isinstance(self.dataset, DatasetSpec):
            _fail(owner, f"dataset must be a DatasetSpec or None, got {type(self.dataset).__name__}")
        for w in ("loss_weight", "sample_weight"):
            v = getattr(self, w)
            if not isinstance(v, (int, float)) or not v > 0 or math.isinf(v):
                _fail(owner, f"{w} must be a positive finite number, got {v!r}")
        if self.max_episode_steps is not None and (
            not isinstance(self.max_episode_steps, int) or self.max_episode_steps <= 0
        ):
            _fail(owner, f"max_episode_steps must be a positive int or None, got {self.max_episode_steps!r}")
        if self.context_steps is not None and (not isinstance(self.context_steps, int) or self.context_steps <= 0):
            _fail(owner, f"context_steps must be a positive int or None, got {self.context_steps!r}")

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        """Observation fields followed by the action field (if any)."""
        return self.observation + ((self.action,) if self.action is not None else ())

    @property
    def is_rl(self) -> bool:
        """Whether the task is an environment with actions (as opposed to a text/image data set)."""
        return self.action is not None

    def codecs(self) -> set[str]:
        """Names of the codecs this task's fields use."""
        return {f.codec for f in self.fields}


_NUMPY_KINDS = {
    "float32": "f",
    "float64": "f",
    "int64": "iu",
    "int32": "iu",
    "uint8": "iu",
    "bool": "b",
}


def check_field_value(field: FieldSpec, value: Any, *, task: str = "?", batch: tuple[int, ...] = ()) -> None:
    """Check that one value (or a batch of values) matches a field spec.

    Args:
        field: the spec.
        value: a numpy array / scalar (or ``str`` for string fields; a sequence of them when batched).
        task: task name, for the message.
        batch: leading batch dimensions expected before the field's shape.

    Raises:
        ValueError: naming the task, the field, the expected and actual shape, dtype or value range, or the first
            NaN / infinite value of a float field.
    """
    where = f"task {task!r} field {field.name!r}"
    if field.dtype == "string":
        flat = np.asarray(value, dtype=object).reshape(-1) if batch else [value]
        if not all(isinstance(v, str) for v in flat):
            raise ValueError(f"{where}: expected str values, got {type(value).__name__}")
        return
    arr = np.asarray(value)
    expected = tuple(batch) + tuple(field.shape)
    if arr.shape != expected:
        raise ValueError(f"{where}: expected shape {expected}, got {arr.shape}")
    if arr.dtype.kind not in _NUMPY_KINDS[field.dtype]:
        raise ValueError(f"{where}: expected dtype {field.dtype}, got {arr.dtype}")
    check_finite(arr, field=where)
    if field.n is not None and arr.size and (arr.min() < 0 or arr.max() >= field.n):
        raise ValueError(f"{where}: expected values in [0, {field.n}), got range [{arr.min()}, {arr.max()}]")


def check_finite(values: Any, *, field: str) -> None:
    """Refuse NaN and infinite values (integer, bool and string values always pass).

    One ``isfinite(...).all()`` per call; the first bad value is looked up only when there is one.

    Args:
        values: a torch tensor (checked where it lives) or anything ``numpy.asarray`` takes.
        field: what the values are, for the message: a column, ``"rewards"``, ``"task 'x' field 'y'"``.

    Raises:
        ValueError: e.g. ``continuous_observations: expected finite values, got NaN at [0, 3, 2]``.
    """
    if hasattr(values, "is_floating_point"):  # a torch tensor (torch is not imported here: task listing stays fast)
        if not values.is_floating_point() or bool(values.isfinite().all()):
            return
        index = (~values.isfinite()).nonzero()[0].tolist()
    else:
        values = np.asarray(values)
        if values.dtype.kind != "f" or bool(np.isfinite(values).all()):
            return
        index = np.argwhere(~np.isfinite(values))[0].tolist()
    bad = float(values[tuple(index)])
    what = "NaN" if math.isnan(bad) else ("inf" if bad > 0 else "-inf")
    raise ValueError(f"{field}: expected finite values, got {what} at {index}")


def check_task_codecs(task: TaskSpec, codecs: Iterable[str], *, owner: str = "this model") -> None:
    """Check that every field of ``task`` uses a codec in ``codecs`` (a model's or a processor's).

    Args:
        task: the task.
        codecs: the codec names available (e.g. ``model.codecs``).
        owner: who has those codecs, for the message.

    Raises:
        ValueError: e.g. ``task 'babyai-go-to': field 'discrete_observations' needs codec 'discrete', this model
            has codecs ['continuous', 'text']``.
    """
    available = sorted(codecs)
    for f in task.fields:
        if f.codec not in available:
            raise ValueError(
                f"task {task.name!r}: field {f.name!r} needs codec {f.codec!r}, {owner} has codecs {available}"
            )
