"""``JatOutput``: what :meth:`jat_core.model.JatModel.forward` returns."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch


@dataclass
class JatOutput:
    """Output of :meth:`JatModel.forward`. Fields a batch does not produce are ``None``.

    Read fields as attributes (``out.loss``) or by name (``out["loss"]``); ``to_tuple()`` gives the fields that are
    not ``None``, in order (what ``return_dict=False`` returns). Our own class, not transformers' ``ModelOutput``,
    whose field names and constructor change between releases (5.24 renamed ``past_key_values`` to ``cache``);
    ``out.cache`` is an alias of ``out.past_key_values``.

    Attributes:
        loss: scalar. RL: ``obs_coef * observation_loss + act_coef * action_loss``; sequence: next-token loss.
        observation_loss: scalar (RL): mean next-observation loss over valid steps (0 when the observation codec
            predicts nothing or ``observation_loss_coef`` is 0).
        action_loss: scalar (RL): mean action loss over valid steps.
        pred_actions: ``(B, T, ...)`` (RL): the action codec's predictions at every step (continuous: ``(B, T,
            act_dim)``; discrete: logits ``(B, T, vocab_size)``).
        pred_observations: ``(B, T, ...)`` (RL): predicted ``o_{t+1}`` from the state at ``a_t`` (continuous:
            ``(B, T, obs_dim)``; image: ``(B, T, 4, 84, 84)``), or ``None``.
        logits: ``(B, L, vocab_size)`` (sequence): next-token logits at every position (image patches included).
        past_key_values: the trunk's cache when ``use_cache=True``.
        hidden_states: the trunk's hidden states when ``output_hidden_states=True``.
    """

    loss: torch.Tensor | None = None
    observation_loss: torch.Tensor | None = None
    action_loss: torch.Tensor | None = None
    pred_actions: torch.Tensor | None = None
    pred_observations: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: Any = None
    hidden_states: tuple[torch.Tensor, ...] | None = None

    @property
    def cache(self) -> Any:
        """The trunk's cache (``past_key_values``)."""
        return self.past_key_values

    def __getitem__(self, name: str) -> Any:
        """A field by name, e.g. ``out["loss"]``."""
        if name not in self.keys():
            raise KeyError(f"JatOutput: no field {name!r} set; set fields: {self.keys()}")
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self.keys()

    def keys(self) -> list[str]:
        """Names of the fields that are not ``None``."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are not ``None``, in declaration order."""
        return tuple(getattr(self, name) for name in self.keys())
