"""The codec contract: how a modality turns into trunk tokens and back.

A codec is an ``nn.Module`` built by a factory registered through ``jat_register_codecs``. It knows one modality
(continuous vectors, integer vectors, images, image patches, text) and nothing about domains. All methods are
batched over batch ``B`` and timesteps ``T`` (or sequence length ``L`` for token streams); ``H`` is the trunk
width.

Roles. A field plays one of three roles, which is passed to every method:

- ``"observation"``: one token per timestep; ``encode`` receives the rewards received before each step;
- ``"action"``: one token per timestep; no rewards;
- ``"sequence"``: a token stream (text tokens, image patches) with ``L`` tokens per sample, not interleaved.

A codec declares which roles it supports in ``roles`` and, for each, the data-set column it reads in
``columns`` (``{"observation": "continuous_observations", "action": "continuous_actions"}``). The model uses
``columns`` to route the keyword arguments of ``forward`` to codecs, so the core never names a column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

OBSERVATION = "observation"
ACTION = "action"
SEQUENCE = "sequence"


@dataclass
class SharedParts:
    """Parts owned by the core and handed to codec factories.

    Attributes:
        wte: the token table ``nn.Embedding(vocab_size, H)`` (text tokens, discrete values and actions).
        head: the token head ``nn.Linear(H, vocab_size, bias=False)`` (text and discrete-action logits).
    """

    wte: nn.Embedding
    head: nn.Linear

    def logits(self, hidden: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Token-head logits ``(..., vocab_size)`` of ``hidden (..., H)``, or only the first ``size`` (only those
        rows of the head are computed: an agent needs only its task's ``n`` actions)."""
        head = self.head
        return F.linear(hidden, head.weight[:size], None if head.bias is None else head.bias[:size])


class Codec(nn.Module):
    """Base class of every codec. Subclasses set ``name``, ``roles``, ``columns`` and implement the methods.

    Class attributes:
        name: the registered name.
        roles: the roles the codec supports (subset of ``("observation", "action", "sequence")``).
        columns: data-set column read for each role.
        sequence_order: for ``"sequence"`` codecs, where their tokens go when several are present in one
            sample (lower first: image patches before text).
        predicts: roles for which ``decode``/``loss`` are meaningful (e.g. discrete observations are not
            predicted by the reference model).
    """

    name: ClassVar[str] = ""
    roles: ClassVar[tuple[str, ...]] = ()
    #: The core's shared parts, for codecs that use them (``None`` otherwise). Keep them here, as a plain
    #: attribute, not as submodules: the core owns (and saves) the token table and head exactly once.
    shared: SharedParts | None = None
    columns: ClassVar[dict[str, str]] = {}
    sequence_order: ClassVar[int] = 0
    predicts: ClassVar[tuple[str, ...]] = ()
    #: What ``decode(role="action")`` gives per action, for messages: ``"values"``, ``"logits (n)"``...
    action_unit: ClassVar[str] = "values"
    #: How the published JAT checkpoint names the weights this codec brings (``jat-convert``): its key prefix ->
    #: ours (``"codecs.<name>."`` for the codec's own layers, or the core's names of the shared token table
    #: ``transformer.wte.weight`` and head ``lm_head.``); ``None`` drops weights the reference never used.
    reference_keys: ClassVar[dict[str, str | None]] = {}

    def prepare(self, values, *, role: str) -> torch.Tensor:
        """Turn raw values (numpy arrays as envs and data sets give them) into model inputs.

        Args:
            values: array ``(B, T, *field_shape)`` (``(B, L, ...)`` for sequences), in the data set's format
                (e.g. images as ``uint8`` height x width x channels).
            role: the role of the values.

        Returns:
            A tensor in the format ``encode`` expects (e.g. float images, channels first, in ``[-1, 1]``).
            The default converts with ``torch.as_tensor`` and leaves dtype and layout alone.
        """
        return torch.as_tensor(values)

    def encode(self, values: torch.Tensor, rewards: torch.Tensor | None = None, *, role: str) -> torch.Tensor:
        """Embed values.

        Args:
            values: ``(B, T, *shape)`` for observation and action roles (the fields sharing this codec already
                concatenated along the last dimension), ``(B, L, ...)`` or ``(B, C, H, W)`` for sequences.
            rewards: ``(B, T)`` float rewards for the observation role, else ``None``.
            role: ``"observation"``, ``"action"`` or ``"sequence"``.

        Returns:
            ``(B, T, H)`` (``(B, L, H)`` for sequences).
        """
        raise NotImplementedError

    def decode(self, hidden: torch.Tensor, *, role: str, size: int | None = None) -> torch.Tensor:
        """Predict values from trunk hidden states.

        Args:
            hidden: ``(B, T, H)``.
            role: the role of the values being predicted.
            size: optional restriction: the action dimension of a continuous action, or the number of logits
                needed for a discrete action (the agent asks only for the task's ``n``).

        Returns:
            predictions, ``(B, T, ...)`` (a codec documents its own trailing shape).
        """
        raise NotImplementedError

    def crop(self, predictions: torch.Tensor, values: torch.Tensor, *, role: str) -> torch.Tensor:
        """Cut what ``decode`` returned down to what the model reports as predictions for ``values``.

        Args:
            predictions: ``decode`` output, ``(B, T, ...)``.
            values: the values of the batch (the shape to match), ``(B, T, *shape)``.
            role: the role of the values.

        Returns:
            The predictions ``forward`` returns (e.g. a continuous codec keeps the first ``shape[-1]`` of its
            ``max_continuous_size`` outputs). The default returns ``predictions`` unchanged.
        """
        return predictions

    def loss(
        self,
        predictions: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor,
        *,
        role: str,
        rewards: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-step loss.

        Predictions and targets are aligned: ``predictions[:, t]`` is compared with ``targets[:, t]`` (the core
        does the shifting: next-observation and next-token targets arrive already shifted).

        Args:
            predictions: what ``decode`` returned (uncropped), ``(B, T, ...)``.
            targets: the true values, ``(B, T, *shape)``; values at masked steps are arbitrary but in range.
            mask: ``(B, T)`` bool, True where the step is valid.
            role: the role of the targets.
            rewards: ``(B, T)`` rewards, for observation targets that include the reward.

        Returns:
            ``(B, T)`` float loss per step, zero where ``mask`` is False. The core weights and reduces it.
        """
        raise NotImplementedError

    # -- acting (codecs that predict actions) -------------------------------------------------------------------
    def action_size(self, field: Any) -> int:
        """How many outputs ``decode(role="action", size=...)`` must give for one action of ``field`` (a
        :class:`jat_core.specs.FieldSpec`): e.g. the ``n`` logits of a choice among ``n``, or the values of a
        vector. The default: the field's number of values (``field.size``)."""
        return field.size

    def choose(
        self,
        prediction: torch.Tensor,
        field: Any,
        *,
        deterministic: bool = True,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The actions an agent takes from one step's predictions.

        Args:
            prediction: ``(N, action_size(field))``, what ``decode(role="action", size=...)`` gave for ``N`` envs.
            field: the task's action field (its shape, bounds, number of values).
            deterministic: the most likely action (True) or a draw (False), for codecs that predict a distribution.
            temperature: divides the scores before a draw.
            generator: the agent's seeded generator for draws.

        Returns:
            ``(N, *field.shape)`` actions, valid for the field (the agent returns them to the envs).
        """
        raise NotImplementedError(f"codec {self.name!r} does not choose actions")


class Route(NamedTuple):
    """Where a column goes: the codec that reads it, in which role."""

    codec: str
    role: str


def column_routes(codecs: Mapping[str, Codec]) -> dict[str, Route]:
    """Which codec reads each column, in which role (``Codec.columns``), for a model's codecs by name.

    Raises:
        TypeError: a factory returned something that is not a :class:`Codec`.
        ValueError: two codecs read the same column.
    """
    routes: dict[str, Route] = {}
    for name, codec in codecs.items():
        if not isinstance(codec, Codec):
            raise TypeError(f"codec {name!r}: the factory returned {type(codec).__name__}, not a jat_core Codec")
        for role in codec.roles:
            column = codec.columns[role]
            if column in routes:
                raise ValueError(f"column {column!r} is read by codec {routes[column].codec!r} and by codec {name!r}")
            routes[column] = Route(name, role)
    return routes


def sequence_codec(codecs: Mapping[str, Codec], *, predicted: bool) -> str:
    """The name of the one ``"sequence"`` codec among ``codecs`` whose stream is predicted (``predicted=True``: the
    token stream that generation extends) or is an input only (``False``: a stream placed before it).

    Raises:
        ValueError: none or several such codecs (the message lists them).
    """
    names = [
        name for name, codec in codecs.items()
        if SEQUENCE in codec.roles and (SEQUENCE in codec.predicts) == predicted
    ]
    if len(names) != 1:
        what = "a predicted token stream" if predicted else "an input-only token stream"
        raise ValueError(
            f"expected one sequence codec with {what}, got {names or 'none'} among the codecs {sorted(codecs)}"
        )
    return names[0]


def as_tensor(values: Any, field: str) -> torch.Tensor:
    """``values`` as a tensor (tensors pass through unchanged); a ValueError naming ``field`` when they are not an
    array of numbers (ragged lists, strings...). Shared by the model's column checks and the codecs'."""
    if isinstance(values, torch.Tensor):
        return values
    try:
        return torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{field}: expected an array of numbers, got {type(values).__name__} ({exc})") from None
