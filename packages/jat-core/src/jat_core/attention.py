"""GPT-Neo attention, fast: causal (global) or sliding-window (local), with NO ``1/sqrt(d)`` scaling.

A ``"global"`` layer is causal; a ``"local"`` layer lets query slot ``i`` see key slot ``j`` iff
``i - window < j <= i`` (transformers: ``bias ^ tril(bias, -window_size)``). Masks are defined on cache *slots*
(see :mod:`jat_core.trunk`): the ``Lq`` queries are the last ``Lq`` of the ``Lk`` key slots.

Speed comes from ``F.scaled_dot_product_attention`` (never materialising a ``(T, T)`` fp32 matrix per head), and
from sending each block of queries to SDPA with only the keys it can see: the causal triangle of a global layer
and the band of a local one are skipped, not masked (see :func:`attention`). A padding mask that no valid query
can be affected by is dropped (:func:`key_padding`), keeping the fast mask-free causal path.

Precision. The reference upcasts ``q`` and ``k`` to fp32 for the logits; SDPA kernels accumulate in fp32 and run
the softmax in fp32 for half-precision inputs, so no explicit upcast is done here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Queries per SDPA call in :func:`attention`. CPU SDPA kernels skip little of a causal or banded mask by
#: themselves (at 512 tokens ``is_causal`` costs as much as full attention), so blocks of queries are sent
#: with only the keys they can see; 128 was the fastest for 512-1024 tokens and window 256 on one CPU thread.
ATTENTION_BLOCK = 128


def key_padding(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Padding mask ``(B, k_len)`` (1 = attend) -> bool ``key_valid``, or None when it can be ignored.

    It can be ignored when no valid query can see a padded key: no padding at all, or padding only after the
    real tokens of each row (a padded key ``j`` is then seen only by query slots ``i >= j``, padded too).
    """
    if attention_mask is None:
        return None
    valid = attention_mask.bool()  # (B, k_len)
    if bool((valid[:, 1:] <= valid[:, :-1]).all()):
        return None
    return valid


def band_mask(
    q_len: int, k_len: int, window: int | None, key_valid: torch.Tensor | None, device: torch.device
) -> torch.Tensor:
    """Boolean attention mask ``(B or 1, 1, q_len, k_len)``, True = attend.

    Query ``i`` sits at key slot ``s = k_len - q_len + i``; it sees slot ``j`` iff ``j <= s``, ``j > s - window``
    (when ``window`` is given) and ``key_valid[j]`` (when given). Slot ``s`` itself is always visible so that a
    fully padded query row stays finite (its output is unspecified).
    """
    s = torch.arange(k_len - q_len, k_len, device=device)[:, None]  # (q_len, 1) query slots
    j = torch.arange(k_len, device=device)[None, :]  # (1, k_len) key slots
    mask = j <= s
    if window is not None:
        mask = mask & (j > s - window)
    if key_valid is None:
        return mask[None, None]  # (1, 1, q_len, k_len)
    return ((mask[None] & key_valid[:, None, :]) | (j == s)[None])[:, None]  # (B, 1, q_len, k_len)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_valid: torch.Tensor | None = None,
    window: int | None = None,
    dropout_p: float = 0.0,
    block: int | None = None,
) -> torch.Tensor:
    """GPT-Neo attention (no ``1/sqrt(d)`` scaling), causal or sliding-window, computed block by block.

    Args:
        q: ``(B, nh, Lq, d)`` queries of the last ``Lq`` of the ``Lk`` key slots.
        k, v: ``(B, nh, Lk, d)``.
        key_valid: ``(B, Lk)`` bool, False at padded slots, or None (see :func:`key_padding`).
        window: None for a global layer; for a local layer, slot ``i`` sees slots ``i - window < j <= i``.
        dropout_p: attention dropout.
        block: queries per SDPA call; None = ``ATTENTION_BLOCK``.

    Each block of queries goes to SDPA with only the keys it can see: from slot 0 (global) or from its first
    query's window start (local) up to its last query. This skips the masked upper triangle of a causal layer
    and everything outside the band of a local one, which the CPU kernels do not skip on their own.

    Returns:
        ``(B, nh, Lq, d)``.
    """
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        # CPU SDPA kernels in half precision are slower than fp32 at these sizes (the bf16 backward most of all:
        # docs/benchmarks.md, "Design measurements"); the matrix products around attention keep the half type
        with torch.autocast("cpu", enabled=False):
            out = attention(q.float(), k.float(), v.float(), key_valid, window, dropout_p, block)
        return out.to(q.dtype)
    block = block or ATTENTION_BLOCK
    q_len, k_len = q.shape[2], k.shape[2]
    past = k_len - q_len
    outputs = []
    for start in range(0, q_len, block):
        end = min(start + block, q_len)
        k_end = past + end  # one past the last query's slot
        k_start = 0 if window is None else max(0, past + start - window + 1)
        qb, kb, vb = q[:, :, start:end], k[:, :, k_start:k_end], v[:, :, k_start:k_end]
        valid = None if key_valid is None else key_valid[:, k_start:k_end]
        if valid is None and end - start == 1:  # one query sees every key it was given
            out = F.scaled_dot_product_attention(qb, kb, vb, dropout_p=dropout_p, scale=1.0)
        elif valid is None and k_start == 0 and k_end == end - start and (window is None or k_end <= window):
            out = F.scaled_dot_product_attention(qb, kb, vb, dropout_p=dropout_p, is_causal=True, scale=1.0)
        else:
            mask = band_mask(end - start, k_end - k_start, window, valid, q.device)
            out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, dropout_p=dropout_p, scale=1.0)
        outputs.append(out)
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
