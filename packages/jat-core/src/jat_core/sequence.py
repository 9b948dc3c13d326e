"""Sequence plumbing, pure tensor code: interleave observations and actions, cut episodes into windows, pad,
build attention masks, and reduce per-step losses.

RL layout (the reference's): each timestep ``t`` contributes two tokens, ``[o_t, a_t]``, so ``T`` steps make
``2T`` tokens ``[o_0, a_0, o_1, a_1, ...]``. The hidden state at ``o_t`` predicts ``a_t``; the one at ``a_t``
predicts ``o_{t+1}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from jat_core.specs import check_finite


def interleave(observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``[o_0, a_0, o_1, a_1, ...]``.

    Args:
        observations: ``(B, T, H)``.
        actions: ``(B, T, H)``.

    Returns:
        ``(B, 2T, H)``.
    """
    if observations.shape != actions.shape:
        raise ValueError(
            f"observation and action embeddings must have the same shape, got {tuple(observations.shape)} "
            f"and {tuple(actions.shape)}"
        )
    B, T, H = observations.shape
    return torch.stack((observations, actions), dim=2).reshape(B, 2 * T, H)


def deinterleave(hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``(B, 2T, H)`` into the states at observation tokens and at action tokens, ``(B, T, H)`` each."""
    if hidden.shape[1] % 2:
        raise ValueError(f"an interleaved sequence has an even length, got {hidden.shape[1]}")
    return hidden[:, 0::2], hidden[:, 1::2]


def interleave_mask(mask: torch.Tensor) -> torch.Tensor:
    """Step mask ``(B, T)`` -> token mask ``(B, 2T)``: each step's observation and action share its validity."""
    return torch.repeat_interleave(mask, repeats=2, dim=1)


def extend_mask(mask: torch.Tensor | None, batch: int, length: int, device=None) -> torch.Tensor:
    """A ``(B, length)`` boolean mask whose leading tokens not covered by ``mask`` are valid.

    Used when a mask describes only the last tokens of what the trunk sees: the cached past (incremental
    decoding) and image patches placed before text (the reference prepends ones for them).

    Args:
        mask: ``(B, L)`` with ``L <= length``, or ``None`` (all valid).
        batch: ``B``.
        length: total tokens (past + current).
        device: device of a mask built from nothing.

    Returns:
        ``(B, length)`` bool.
    """
    if mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    mask = mask.bool()
    missing = length - mask.shape[1]
    if missing < 0:
        raise ValueError(f"attention_mask: expected at most {length} positions, got {mask.shape[1]}")
    if missing == 0:
        return mask
    return torch.cat((mask.new_ones(batch, missing), mask), dim=1)


def window_bounds(num_steps: int, window: int) -> list[tuple[int, int]]:
    """Cut ``num_steps`` into consecutive ``[start, end)`` windows of at most ``window`` steps; nothing dropped.

    The last window is shorter when ``window`` does not divide ``num_steps`` (the reference's ``truncate`` with
    ``preserve=True``). An empty episode gives no window.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    return [(start, min(start + window, num_steps)) for start in range(0, num_steps, window)]


def split_windows(values: Sequence | np.ndarray, window: int) -> list:
    """Cut one episode's per-step values (a list or an array with steps first) into windows of ``window``."""
    return [values[start:end] for start, end in window_bounds(len(values), window)]


def pad_steps(pieces: Sequence, length: int | None = None, value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length pieces (steps first) into one batch, padded at the end, with a validity mask.

    Args:
        pieces: ``N`` arrays/tensors of shape ``(T_i, *shape)``.
        length: padded length (default: the longest piece). Longer pieces are an error.
        value: padding value (0: a valid action and token id, a black frame).

    Returns:
        ``(N, length, *shape)`` values and ``(N, length)`` bool mask, True on real steps.
    """
    tensors = [torch.as_tensor(p) for p in pieces]
    if not tensors:
        raise ValueError("pad_steps: expected at least one piece, got none")
    length = max(t.shape[0] for t in tensors) if length is None else length
    trailing = tensors[0].shape[1:]
    out = torch.full((len(tensors), length, *trailing), value, dtype=tensors[0].dtype)
    mask = torch.zeros(len(tensors), length, dtype=torch.bool)
    for i, t in enumerate(tensors):
        if t.shape[1:] != trailing:
            raise ValueError(f"pad_steps: piece {i} has step shape {tuple(t.shape[1:])}, expected {tuple(trailing)}")
        if t.shape[0] > length:
            raise ValueError(f"pad_steps: piece {i} has {t.shape[0]} steps, more than length={length}")
        out[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return out, mask


def shift_rewards(rewards: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rewards as observation inputs: ``o_t`` carries the reward received before it, ``[0] + rewards[:-1]``.

    Args:
        rewards: one episode's rewards ``(T,)``, ``rewards[t]`` received after action ``a_t``.

    Returns:
        ``(T,)`` float32.
    """
    r = np.asarray(rewards, dtype=np.float32)
    if r.ndim != 1:
        raise ValueError(f"rewards: expected one episode's (T,) rewards, got shape {r.shape}")
    return np.concatenate((np.zeros(1, dtype=np.float32), r[:-1])) if r.size else r


def weighted_mean(loss: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Reduce a per-step loss the reference's way: ``sum(loss * weights over valid steps) / number of valid steps``.

    Args:
        loss: ``(B, T)`` per-step loss (zero at masked steps or not: the mask is applied here).
        mask: ``(B, T)`` bool, True on valid steps.
        weights: ``(B, T)`` per-step loss weights, or ``None``.

    Returns:
        A scalar; ``0`` when no step is valid (instead of a NaN).
    """
    mask = mask.bool()
    loss = torch.where(mask, loss, torch.zeros_like(loss))
    if weights is not None:
        loss = loss * weights.to(loss.dtype)
    return loss.sum() / mask.sum().clamp(min=1)


def past_length(past_key_values) -> int:
    """Tokens already in a cache (0 without one)."""
    return past_key_values.get_seq_length() if past_key_values is not None else 0


def step_mask(attention_mask, shape: tuple[int, int], device=None) -> torch.Tensor:
    """A ``(B, T)`` bool step mask: ``attention_mask`` checked against ``shape``, or all True when ``None``."""
    if attention_mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    mask = torch.as_tensor(attention_mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"attention_mask: expected the step mask shape (B, T) = {tuple(shape)}, got {tuple(mask.shape)}")
    return mask.bool()


def loss_weights(loss_weight, shape: tuple[int, int], *, what: str) -> torch.Tensor | None:
    """``(B, T)`` float loss weights from ``(B, T)`` or per-sample ``(B,)`` ones (``None`` stays ``None``).

    Args:
        loss_weight: the weights, or ``None``.
        shape: ``(B, T)`` of the losses they weight.
        what: what ``T`` counts, for the message (``"(B, T)"``, ``"(B, L) of input_ids"``).
    """
    if loss_weight is None:
        return None
    w = torch.as_tensor(loss_weight)
    check_finite(w, field="loss_weight")
    if w.dim() == 1 and w.shape[0] == shape[0]:
        w = w[:, None].expand(shape)
    if tuple(w.shape) != tuple(shape):
        raise ValueError(f"loss_weight: expected shape {tuple(shape)} ({what}) or ({shape[0]},), got {tuple(w.shape)}")
    if not w.is_floating_point():
        raise ValueError(f"loss_weight: expected a floating-point tensor, got dtype {w.dtype}")
    return w
