"""Input checks shared by the codecs: bad input gets a ``ValueError`` naming the field, what was expected and
what arrived, before torch gets a chance to fail with an index or shape error deep inside a layer."""

from __future__ import annotations

import torch
from jat_core.codec import as_tensor


def tensor(values, *, field: str) -> torch.Tensor:
    """``values`` as a tensor (tensors pass through unchanged); see :func:`jat_core.codec.as_tensor`.

    Raises:
        ValueError: the values cannot be converted (ragged lists, strings...).
    """
    return as_tensor(values, field)


def shape(x: torch.Tensor, expected: tuple, *, field: str, layout: str) -> None:
    """Check ``x.shape`` against ``expected``, where ``None`` entries match any size.

    Args:
        x: the tensor.
        expected: sizes, ``None`` for free dimensions.
        field: column name for the message.
        layout: a human description, e.g. ``"(B, T, 4, 84, 84)"``.
    """
    ok = x.dim() == len(expected) and all(e is None or e == s for e, s in zip(expected, x.shape))
    if not ok:
        raise ValueError(f"{field}: expected shape {layout}, got {tuple(x.shape)}")


def floating(x: torch.Tensor, *, field: str) -> None:
    """Require a floating-point dtype."""
    if not x.is_floating_point():
        raise ValueError(f"{field}: expected a floating-point tensor, got dtype {x.dtype}")


def integer(x: torch.Tensor, *, field: str) -> None:
    """Require an integer dtype (bool excluded)."""
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{field}: expected an integer tensor, got dtype {x.dtype}")


def int64(values, *, field: str) -> torch.Tensor:
    """Any integer array or tensor as an int64 tensor; a ValueError naming ``field`` for anything else."""
    x = tensor(values, field=field)
    integer(x, field=field)
    return x.to(torch.int64)


def in_range(x: torch.Tensor, high: int, *, field: str, what: str = "values") -> None:
    """Require integer values in ``[0, high)``."""
    if x.numel() == 0:
        return
    low_seen, high_seen = int(x.min()), int(x.max())
    if low_seen < 0 or high_seen >= high:
        raise ValueError(f"{field}: expected {what} in [0, {high}), got range [{low_seen}, {high_seen}]")


def rewards(values, batch_shape: tuple, *, field: str) -> torch.Tensor:
    """The ``(B, T)`` float rewards an observation needs.

    Args:
        values: the rewards, or ``None``.
        batch_shape: the ``(B, T)`` of the observations.
        field: the observation column, for the message.

    Returns:
        A float tensor ``(B, T)``.
    """
    if values is None:
        raise ValueError(f"rewards: expected a float tensor of shape {tuple(batch_shape)} for {field}, got None")
    r = tensor(values, field="rewards")
    if r.shape != torch.Size(batch_shape):
        raise ValueError(f"rewards: expected shape {tuple(batch_shape)} (B, T) for {field}, got {tuple(r.shape)}")
    if not r.is_floating_point():
        raise ValueError(f"rewards: expected a floating-point tensor, got dtype {r.dtype}")
    return r


def mask(values, batch_shape: tuple, *, field: str = "mask") -> torch.Tensor:
    """A ``(B, T)`` boolean step mask."""
    m = tensor(values, field=field)
    if m.shape != torch.Size(batch_shape):
        raise ValueError(f"{field}: expected shape {tuple(batch_shape)}, got {tuple(m.shape)}")
    return m.bool()


def config_int(config, codec: str, name: str) -> int:
    """``config.<name>``, one of ``codec``'s options (:data:`jat_codecs.plugin.OPTIONS`, whose default it takes
    when ``config`` lacks it, e.g. a codec built by hand), which must be a positive int (the ValueError names it
    as ``JatConfig`` names its own fields)."""
    from jat_codecs.plugin import OPTIONS

    value = getattr(config, name, OPTIONS[codec][name])
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"JatConfig.{name}: expected a positive int, got {value!r}")
    return value
