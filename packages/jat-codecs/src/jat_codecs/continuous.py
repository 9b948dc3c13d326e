"""Continuous codec: real-valued observation and action vectors (MuJoCo, Meta-World).

Maths of the reference (one linear layer each way, shared by observations and actions):

- observation ``o_t`` (``n`` values) with the reward ``r_t`` received before it: ``x = [o_t, r_t]`` (``n + 1``);
- action ``a_t`` (``m`` values): ``x = a_t``;
- ``x`` is repeated **cyclically** to ``max_continuous_size`` (377) values, ``x[i % len(x)]`` (not zero padding),
  then ``encoder = Linear(377, H)``;
- ``decoder = Linear(H, 377)``; the first ``n`` (observation) or ``m`` (action) outputs are the prediction.

Loss, **fixed** (a quirk of the reference, docs/reference/published-jat.md): the reference takes the MSE over
all 377 cyclic values, so the first ``377 mod len(x)`` values of a vector count once more than the others and
a small vector's error is an average over its own repeats. Here the MSE is over the ``len(x)`` distinct values
only (observation and reward for an observation, the ``m`` action values for an action): every value counts
once. Predictions are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jat_core.codec import ACTION, OBSERVATION, Codec
from torch import nn

from jat_codecs import checks


def cyclic_expand(x: torch.Tensor, size: int) -> torch.Tensor:
    """Repeat the last dimension cyclically: ``out[..., i] = x[..., i % x.shape[-1]]``.

    Args:
        x: ``(..., k)`` with ``k <= size``.
        size: the length of the result.

    Returns:
        ``(..., size)``.
    """
    index = torch.arange(size, device=x.device) % x.shape[-1]
    return x[..., index]


class ContinuousCodec(Codec):
    """Encode and decode continuous observation (plus reward) and action vectors.

    Args:
        hidden_size: trunk width ``H``.
        max_size: ``max_continuous_size``, the cyclic expansion length (377 in the published model).
    """

    name = "continuous"
    roles = (OBSERVATION, ACTION)
    columns = {OBSERVATION: "continuous_observations", ACTION: "continuous_actions"}
    predicts = (OBSERVATION, ACTION)
    reference_keys = {"continuous_encoder.": "codecs.continuous.encoder.", "continuous_decoder.": "codecs.continuous.decoder."}

    def __init__(self, hidden_size: int, max_size: int) -> None:
        super().__init__()
        self.max_size = max_size
        self.encoder = nn.Linear(max_size, hidden_size)
        self.decoder = nn.Linear(hidden_size, max_size)

    def prepare(self, values, *, role: str) -> torch.Tensor:
        """Raw vectors ``(B, T, n)`` (any float or int array) to a float32 tensor."""
        return checks.tensor(values, field=self.columns[role]).to(torch.float32)

    def _vector(self, values, rewards, role: str) -> torch.Tensor:
        """Validated ``(B, T, k)`` vector: the observation with its reward appended, or the action."""
        field = self.columns[role]
        x = checks.tensor(values, field=field)
        checks.shape(x, (None, None, None), field=field, layout="(B, T, size)")
        checks.floating(x, field=field)
        if role == OBSERVATION:
            r = checks.rewards(rewards, x.shape[:2], field=field)
            x = torch.cat((x, r.to(x.dtype).unsqueeze(-1)), dim=-1)  # (B, T, n + 1)
        if x.shape[-1] > self.max_size:
            extra = " plus the reward" if role == OBSERVATION else ""
            raise ValueError(
                f"{field}: expected at most {self.max_size - (role == OBSERVATION)} values per step{extra} "
                f"(max_continuous_size={self.max_size}), got {x.shape[-1] - (role == OBSERVATION)}"
            )
        return x

    def encode(self, values, rewards=None, *, role: str) -> torch.Tensor:
        """``(B, T, n)`` observations (with ``(B, T)`` rewards) or ``(B, T, m)`` actions -> ``(B, T, H)``."""
        x = self._vector(values, rewards, role)
        return self.encoder(cyclic_expand(x, self.max_size).to(self.encoder.weight.dtype))

    def decode(self, hidden: torch.Tensor, *, role: str, size: int | None = None) -> torch.Tensor:
        """``(B, T, H)`` -> ``(B, T, max_size)``, or the first ``size`` values (an action's dimension): only those
        rows of the decoder are computed."""
        if size is None:
            return self.decoder(hidden)
        return F.linear(hidden, self.decoder.weight[:size], self.decoder.bias[:size])  # (B, T, size)

    def crop(self, predictions: torch.Tensor, values: torch.Tensor, *, role: str) -> torch.Tensor:
        """The first ``n`` (or ``m``) predicted values, as the reference reports them."""
        return predictions[..., : values.shape[-1]]

    def loss(self, predictions, targets, mask, *, role: str, rewards=None) -> torch.Tensor:
        """Per-step MSE over the distinct values (observation + reward, or action); see the module docstring."""
        target = self._vector(targets, rewards, role).to(predictions.dtype)  # (B, T, k)
        k = target.shape[-1]
        if predictions.shape[-1] < k:
            raise ValueError(f"{self.columns[role]}: predictions have {predictions.shape[-1]} values, need {k}")
        err = F.mse_loss(predictions[..., :k], target, reduction="none").mean(-1)  # (B, T)
        m = checks.mask(mask, err.shape)
        return torch.where(m, err, torch.zeros_like(err))

    def choose(self, prediction, field, *, deterministic=True, temperature=1.0, generator=None) -> torch.Tensor:
        """``(N, *shape)`` actions: the predicted values (the model predicts no spread, as the reference: a draw is
        the mean too), clipped to the field's ``[low, high]``."""
        low = -torch.inf if field.low is None else field.low
        high = torch.inf if field.high is None else field.high
        return prediction.float().clamp(low, high).reshape(-1, *field.shape)


def build(config, shared) -> ContinuousCodec:
    """Codec factory: ``Linear(max_continuous_size, H)`` in, ``Linear(H, max_continuous_size)`` out."""
    return ContinuousCodec(config.hidden_size, checks.config_int(config, "continuous", "max_continuous_size"))
