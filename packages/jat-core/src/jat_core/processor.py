"""``JatProcessor``: raw env / data-set values -> the tensors ``JatModel.forward`` takes, keyed by column.

Both the training data pipeline and the agent call it, so that a model sees exactly the same inputs in training
and in play. It knows no modality: it asks the task's :class:`~jat_core.specs.FieldSpec` which codec a field
uses, and the codec (``Codec.prepare``) how to turn raw values into model inputs and which column they go to.
Its own job is what needs the tokenizer or several fields:

- string fields with ``max_tokens`` (BabyAI's mission) are tokenized to exactly that many ids (truncated, or
  padded with the end token, as the reference pads with ``pad_token = eos_token``);
- the fields of one observation that share a codec are flattened per step and concatenated in spec order
  (BabyAI: 148 grid ints + 64 mission tokens = the 212 ``discrete_observations``), then prepared by the codec;
- real-valued fields and rewards are standardised with the model's ``input_normalization`` for the task, when
  it has one (:mod:`jat_core.normalization`).

Example (a BabyAI window of B episodes x T steps)::

    processor = JatProcessor(tokenizer)                  # or JatProcessor.from_model(model, tokenizer)
    batch = processor.prepare_observations(task, {"discrete_observations": grid,      # (B, T, 148) int
                                                  "text_observations": missions})     # (B, T) str
    batch |= processor.prepare_actions(task, actions)    # (B, T) int   -> {"discrete_actions": ...}
    batch |= processor.prepare_rewards(rewards)          # (B, T) float -> {"rewards": ...}
    out = model(**batch, attention_mask=mask)

Text and captions::

    batch = processor.prepare_text(["a cat on a mat"])                  # {"input_ids", "attention_mask"}
    batch |= processor.prepare_images([image])                          # {"pixel_values"} (patches go first)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from jat_core import normalization
from jat_core.codec import ACTION, OBSERVATION, SEQUENCE, Codec, SharedParts, sequence_codec
from jat_core.specs import FieldSpec, TaskSpec, check_field_value, check_task_codecs


class JatProcessor:
    """Turn raw values into model inputs.

    Args:
        tokenizer: a transformers tokenizer (GPT-2 BPE for the published model; see
            :func:`jat_core.tokenizer.load_tokenizer` / ``build_tokenizer``).
        codecs: codec instances by name (e.g. ``model.codecs``). When ``None``, codecs are built on the meta
            device (no memory, no weights: ``prepare`` needs none) from ``registry`` and ``config``.
        config: a ``JatConfig`` for building codecs (default: the published jat-small).
        registry: the plugin registry (default: :func:`jat_core.load_plugins`).
        text_codec: name of the codec ``prepare_text`` uses; default: the one sequence codec whose stream is
            predicted (the token stream that generation extends; :func:`jat_core.codec.sequence_codec`).
        image_codec: name of the codec ``prepare_images`` uses; default: the one sequence codec that is an input
            only (its tokens go before the predicted stream).
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        codecs: Mapping[str, Codec] | None = None,
        config: Any = None,
        registry: Any = None,
        text_codec: str | None = None,
        image_codec: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self._codecs: dict[str, Codec] = dict(codecs) if codecs is not None else {}
        self._build_missing = codecs is None
        self._config = config
        self._registry = registry
        self.text_codec, self.image_codec = text_codec, image_codec

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, **kwargs: Any) -> JatProcessor:
        """A processor that uses ``model.codecs``."""
        return cls(tokenizer, codecs=model.codecs, config=model.config, **kwargs)

    # -- codecs ----------------------------------------------------------------------------------------------
    def codec(self, name: str) -> Codec:
        """The codec called ``name`` (built on the meta device when the processor was given none)."""
        if name in self._codecs:
            return self._codecs[name]
        if not self._build_missing:
            raise ValueError(f"unknown codec {name!r}; this processor's codecs: {sorted(self._codecs)}")
        registry = self._plugins()
        if self._config is None:
            from jat_core.config import JatConfig

            self._config = JatConfig()
        config = self._config
        with torch.device("meta"):
            shared = SharedParts(
                wte=nn.Embedding(config.vocab_size, config.hidden_size),
                head=nn.Linear(config.hidden_size, config.vocab_size, bias=False),
            )
            self._codecs[name] = registry.build_codec(name, config, shared)
        return self._codecs[name]

    def all_codecs(self) -> dict[str, Codec]:
        """Every codec this processor has, or can build (on the meta device) from the loaded plugins."""
        names = self._plugins().codecs if self._build_missing else self._codecs
        return {name: self.codec(name) for name in names}

    def _sequence_codec(self, name: str | None, *, predicted: bool) -> Codec:
        """The codec called ``name``, or (``None``) the one sequence codec that is (not) predicted."""
        return self.codec(name if name is not None else sequence_codec(self.all_codecs(), predicted=predicted))

    def _plugins(self) -> Any:
        """The plugin registry codecs are built from (loaded on first use)."""
        if self._registry is None:
            from jat_core.plugins import load_plugins

            self._registry = load_plugins()
        return self._registry

    def _check_codecs(self, task: TaskSpec) -> None:
        """The task's fields use codecs this processor has (or can build from the plugins)."""
        if self._build_missing:
            check_task_codecs(task, set(self._codecs) | set(self._plugins().codecs), owner="the loaded plugins")
        else:
            check_task_codecs(task, self._codecs, owner="this processor")

    # -- tokens ----------------------------------------------------------------------------------------------
    @property
    def pad_token_id(self) -> int:
        """The id that pads token fields: the end token (GPT-2's ``<|endoftext|>``), as the reference."""
        eos = self.tokenizer.eos_token_id
        return eos if eos is not None else self.tokenizer.pad_token_id

    def token_ids(self, strings: Sequence[str]) -> list[list[int]]:
        """The token ids of each string, as the tokenizer gives them (no padding, no truncation)."""
        return self.tokenizer(list(strings)).input_ids if len(strings) else []

    def tokenize(self, strings: Sequence[str], max_tokens: int) -> np.ndarray:
        """Tokenize strings to exactly ``max_tokens`` ids each (truncated at the end, padded with the end token).

        Returns:
            ``(len(strings), max_tokens)`` int64.
        """
        ids = self.token_ids(strings)
        out = np.full((len(strings), max_tokens), self.pad_token_id, dtype=np.int64)
        for i, row in enumerate(ids):
            row = row[:max_tokens]
            out[i, : len(row)] = row
        return out

    # -- RL --------------------------------------------------------------------------------------------------
    def _field_values(self, task: TaskSpec, field: FieldSpec, value: Any, batch: tuple[int, ...] | None, *, step: bool):
        """Validated ``(B, T, *shape)`` values of one field (``step``: ``(N, *shape)``); string fields come back as
        ``(..., max_tokens)`` ids. ``batch``: the leading dimensions the field must have (``None``: any ``(B, T)``)."""
        where = f"task {task.name!r} field {field.name!r}"
        if field.dtype == "string":
            arr = np.asarray(value, dtype=object)
            if step:
                arr = arr.reshape(-1)
                if arr.shape != batch:
                    raise ValueError(f"{where}: expected {batch[0]} strings (one per env), got {arr.shape[0]}")
            elif batch is not None and arr.shape != batch:
                raise ValueError(f"{where}: expected shape {batch}, got {arr.shape}")
            elif arr.ndim != 2:
                raise ValueError(f"{where}: expected (B, T) strings, got shape {arr.shape}")
            check_field_value(field, arr, task=task.name, batch=arr.shape)
            if field.max_tokens is None:
                raise ValueError(f"{where}: a string field needs max_tokens to be tokenized")
            return self.tokenize(arr.reshape(-1).tolist(), field.max_tokens).reshape(*arr.shape, field.max_tokens)
        arr = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if batch is None:
            if arr.ndim < 2:
                raise ValueError(f"{where}: expected shape (B, T, *{field.shape}), got {arr.shape}")
            batch = arr.shape[:2]
        check_field_value(field, arr, task=task.name, batch=batch)
        return arr

    def prepare_observations(
        self, task: TaskSpec, values: Mapping[str, Any], *, envs: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Observations of ``B`` sequences of ``T`` steps -> ``{column: tensor}``.

        Args:
            task: the task spec.
            values: ``{field name: array (B, T, *field.shape)}`` for every observation field (strings: ``(B, T)``).
            envs: ``values`` hold one step of ``envs`` envs instead, ``(N, *field.shape)`` (strings: ``N``), as an
                agent gets them; they are checked as such and come back with one timestep, ``(N, 1, ...)``.

        Returns:
            One entry per codec used by the observation fields, keyed by the codec's observation column, holding
            what the codec's ``prepare`` returns (e.g. ``discrete_observations`` ``(B, T, 212)`` int64 for BabyAI,
            ``image_observations`` ``(B, T, 4, 84, 84)`` float for Atari).

        Raises:
            ValueError: a missing or unknown field, a wrong shape, dtype or range, NaN or infinite values (naming
                task, field, expected and actual), fields with different ``(B, T)``, a codec the processor lacks.
        """
        check_observation_names(task, values)
        self._check_codecs(task)
        groups: dict[str, list[FieldSpec]] = {}
        for f in task.observation:
            groups.setdefault(f.codec, []).append(f)
        step = envs is not None
        batch: tuple[int, ...] | None = (envs,) if step else None
        out: dict[str, torch.Tensor] = {}
        for codec_name, fields in groups.items():
            parts = []
            for f in fields:
                arr = self._field_values(task, f, values[f.name], batch, step=step)
                batch = tuple(arr.shape[: 1 if step else 2])
                if normalization.normalizable(f.dtype):
                    arr = self.normalize(task, f.name, arr)
                parts.append(arr)
            if len(parts) == 1:
                raw = parts[0]
            else:
                raw = np.concatenate([p.reshape(*batch, -1) for p in parts], axis=-1)  # (B, T, sum of sizes)
            if step:
                raw = raw[:, None]  # (N, 1, ...): one timestep
            codec = self.codec(codec_name)
            out[codec.columns[OBSERVATION]] = codec.prepare(raw, role=OBSERVATION)
        return out

    def prepare_actions(self, task: TaskSpec, values: Any) -> dict[str, torch.Tensor]:
        """Actions ``(B, T, *action.shape)`` -> ``{action column: tensor}`` (e.g. ``discrete_actions`` ``(B, T)``)."""
        if task.action is None:
            raise ValueError(f"task {task.name!r}: has no action field (a task without an environment)")
        self._check_codecs(task)
        arr = self._field_values(task, task.action, values, None, step=False)
        codec = self.codec(task.action.codec)
        return {codec.columns[ACTION]: codec.prepare(arr, role=ACTION)}

    def prepare_rewards(self, rewards: Any, task: TaskSpec | None = None) -> dict[str, torch.Tensor]:
        """Rewards ``(B, T)`` (already shifted: ``o_t`` carries the reward received before it, see
        :func:`jat_core.sequence.shift_rewards`) -> ``{"rewards": float32 (B, T)}``, normalised for ``task``
        when the model has its statistics."""
        r = np.asarray(rewards, dtype=np.float32)
        if r.ndim != 2:
            raise ValueError(f"rewards: expected shape (B, T), got {r.shape}")
        if task is not None:
            r = self.normalize(task, normalization.REWARDS, r)
        return {"rewards": torch.from_numpy(np.ascontiguousarray(r))}

    def normalize(self, task: TaskSpec, name: str, values: Any) -> Any:
        """``values`` of field ``name`` (or ``"rewards"``) of ``task``, standardised with the model's
        ``input_normalization`` (float32, same shape); unchanged when it has no statistics for them.

        Args:
            task: the task spec.
            name: a field name or :data:`jat_core.normalization.REWARDS`.
            values: ``(..., *field.shape)`` numbers (a numpy array or a tensor; a tensor comes back as one).
        """
        stats = getattr(self._config, "input_normalization", None) or {}
        entry = stats.get(task.name, {}).get(name)
        if entry is None:
            return values
        where = f"task {task.name!r} field {name!r}"
        if isinstance(values, torch.Tensor):
            out = normalization.normalize(values.detach().cpu().numpy(), entry, where=where)
            return torch.from_numpy(out).to(values.device)
        return normalization.normalize(values, entry, where=where)

    # -- sequences -------------------------------------------------------------------------------------------
    def prepare_text(self, texts: str | Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenize texts, padded on the right to the longest (and truncated to ``max_length`` tokens if given).

        Returns:
            ``{<text column> ("input_ids"): (B, L) int64, "attention_mask": (B, L) bool}``.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"texts: expected a non-empty list of str, got {texts!r:.80}")
        enc = self.tokenizer(
            texts, padding="longest", padding_side="right", truncation=max_length is not None, max_length=max_length
        )
        ids = np.asarray(enc.input_ids, dtype=np.int64)
        mask = np.asarray(enc.attention_mask, dtype=bool)
        if not self.tokenizer.pad_token_id == self.pad_token_id:
            ids = np.where(mask, ids, self.pad_token_id)
        codec = self._sequence_codec(self.text_codec, predicted=True)
        return {codec.columns[SEQUENCE]: codec.prepare(ids, role=SEQUENCE), "attention_mask": torch.from_numpy(mask)}

    def prepare_images(self, images: Any) -> dict[str, torch.Tensor]:
        """Images (PIL images or ``(H, W, 3)`` uint8 arrays) -> ``{<image column> ("pixel_values"): (B, 3, S, S)}``."""
        codec = self._sequence_codec(self.image_codec, predicted=False)
        return {codec.columns[SEQUENCE]: codec.prepare(images, role=SEQUENCE)}


def check_observation_names(task: TaskSpec, values: Mapping[str, Any]) -> None:
    """``values`` hold exactly the task's observation fields; else a ValueError naming the missing and unknown ones."""
    names = [f.name for f in task.observation]
    missing = [n for n in names if n not in values]
    unknown = [n for n in values if n not in names]
    if missing or unknown:
        raise ValueError(f"task {task.name!r}: expected observation fields {names}, missing {missing}, unknown {unknown}")
