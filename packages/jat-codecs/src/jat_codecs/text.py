"""Text codec: GPT-2 BPE token ids in, next-token logits out, through the core's shared token table and head.

Maths of the reference: tokens are rows of the shared token table ``wte`` (the same tensor that embeds discrete
actions and observations); logits come from the shared token head ``Linear(H, vocab_size, bias=False)`` (not tied
to ``wte``); the loss is cross-entropy on text positions only. The core shifts (position ``t`` predicts token
``t + 1``) and masks padding; this codec compares aligned predictions and targets.

Tokenization itself (strings -> ids) is the processor's job (``jat_core.processor.JatProcessor.prepare_text``):
the codec receives ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jat_core.codec import SEQUENCE, Codec, SharedParts

from jat_codecs import checks


class TextCodec(Codec):
    """Token ids <-> shared token table and head. Owns no parameters.

    Args:
        shared: the core's token table and head.
    """

    name = "text"
    roles = (SEQUENCE,)
    columns = {SEQUENCE: "input_ids"}
    sequence_order = 1  # after image patches
    predicts = (SEQUENCE,)

    def __init__(self, shared: SharedParts) -> None:
        super().__init__()
        self.shared = shared

    @property
    def vocab_size(self) -> int:
        return self.shared.wte.num_embeddings

    def prepare(self, values, *, role: str) -> torch.Tensor:
        """Token ids ``(B, L)`` (any integer array) -> int64 tensor."""
        return checks.int64(values, field=self.columns[role])

    def _ids(self, values) -> torch.Tensor:
        field = self.columns[SEQUENCE]
        x = checks.tensor(values, field=field)
        checks.shape(x, (None, None), field=field, layout="(B, L)")
        checks.integer(x, field=field)
        checks.in_range(x, self.vocab_size, field=field, what="token ids")
        return x

    def encode(self, values, rewards=None, *, role: str) -> torch.Tensor:
        """``(B, L)`` ids -> ``(B, L, H)`` token embeddings."""
        return self.shared.wte(self._ids(values))

    def decode(self, hidden: torch.Tensor, *, role: str, size: int | None = None) -> torch.Tensor:
        """``(B, L, H)`` -> logits ``(B, L, vocab_size)`` (or the first ``size``)."""
        return self.shared.logits(hidden, size)

    def loss(self, predictions, targets, mask, *, role: str, rewards=None) -> torch.Tensor:
        """Per-token cross-entropy ``(B, L)`` of aligned logits and target ids, zero where ``mask`` is False."""
        y = self._ids(targets)
        if y.shape != predictions.shape[:2]:
            raise ValueError(f"input_ids: expected targets of shape {tuple(predictions.shape[:2])}, got {tuple(y.shape)}")
        m = checks.mask(mask, y.shape)
        ce = F.cross_entropy(predictions.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)  # (B, L)
        return torch.where(m, ce, torch.zeros_like(ce))


def build(config, shared: SharedParts) -> TextCodec:
    """Codec factory: the text codec only wraps the shared token table and head."""
    return TextCodec(shared)
