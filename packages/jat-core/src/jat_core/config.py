"""``JatConfig``: everything needed to rebuild a JAT model (trunk sizes, codec names and settings, loss weights).

It is a ``transformers.PreTrainedConfig`` with ``model_type="jat"`` that carries every GPT-Neo attribute under
GPT-Neo's names, so the trunk (``jat_core.trunk.JatTrunk``, or transformers' ``GPTNeoModel``) can be built
straight from it, plus JAT's own fields (``observation_loss_coef``, ``action_loss_coef``, ``codecs``, the names of
the codecs the model builds, and ``codec_settings``). The codecs' options are fields too: each codec plugin declares
the ones it reads, with their defaults (``jat_register_codecs``); a config accepts them as overrides and in
``config.json`` (the published checkpoint carries the built-in codecs' at the top level), and a model built from a
config that lacks one records the default (:meth:`jat_core.plugins.Registry.build_codec`).

Two presets::

    JatConfig.from_preset("small")                  # the published jat-small shapes (docs: The published JAT)
    JatConfig.from_preset("tiny", vocab_size=512)   # H=128, 2 layers: tests and CPU demos

``JatConfig.from_pretrained`` refuses a local directory without ``config.json``, or a file that is not a JSON
object of a valid ``"jat"`` config, with a :class:`CheckpointError` naming the file.

Overrides (``from_preset(name, **overrides)``, ``JatConfig.from_pretrained(path, **overrides)``, and so
``JatModel.from_pretrained(path, **overrides)``) are checked: an unknown name (a typo such as ``num_layer``) is a
``ValueError`` that suggests the closest field, and every override goes through the same validation as a new config.

Importing this module registers the config with ``transformers.AutoConfig`` under ``model_type="jat"``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from collections.abc import Iterable
from typing import Any

from transformers import AutoConfig, PreTrainedConfig

from jat_core import normalization
from jat_core.plugins import installed_codec_options

#: Preset overrides; ``small`` is the class default (the published jat-small).
PRESETS: dict[str, dict[str, Any]] = {
    "small": {},
    "tiny": {
        "hidden_size": 128,
        "num_layers": 2,
        "num_heads": 4,
        "max_position_embeddings": 512,
        "window_size": 256,
        "vocab_size": 50257,
    },
}


CONFIG_FILE = "config.json"


class CheckpointError(ValueError, OSError):
    """A checkpoint that cannot be loaded: a missing, damaged or refused file, or weights that do not fit the model.
    The message names the file. Both a ``ValueError`` (bad input) and an ``OSError`` (what transformers raises for
    unreadable files), so that callers catching either see it."""


#: Keyword arguments that transformers' ``PreTrainedConfig`` takes besides its fields.
PRETRAINED_KWARGS = frozenset(
    {"torch_dtype", "num_labels", "name_or_path", "output_attentions", "attn_implementation", "experts_implementation"}
)


def alternating_attention_types(num_layers: int) -> list:
    """GPT-Neo ``attention_types`` that alternate global and local layers, starting with global.

    Args:
        num_layers: number of trunk layers.

    Returns:
        e.g. ``[[["global", "local"], 6]]`` for 12 layers, ``[[["global", "local"], 1], [["global"], 1]]`` for 3.
    """
    types: list = [[["global", "local"], num_layers // 2]] if num_layers >= 2 else []
    if num_layers % 2:
        types.append([["global"], 1])
    return types


def expand_attention_types(attention_types: list) -> list[str]:
    """Expand GPT-Neo's ``[[pattern, repeats], ...]`` into one ``"global"``/``"local"`` entry per layer."""
    layers: list[str] = []
    for pattern, repeats in attention_types:
        for _ in range(repeats):
            layers.extend(pattern)
    return layers


def _fail(name: str, expected: str, got: Any) -> None:
    shown = repr(got)
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    raise ValueError(f"JatConfig.{name}: expected {expected}, got {shown}")


class JatConfig(PreTrainedConfig):
    """Configuration of a :class:`jat_core.model.JatModel`. Defaults are the published jat-small.

    GPT-Neo trunk fields (same names and meaning as ``transformers.GPTNeoConfig``):
        vocab_size, max_position_embeddings, hidden_size, num_layers, num_heads, attention_types (per-layer
        pattern; ``None``: alternate global and local), window_size (local attention window), intermediate_size
        (``None``: 4 * hidden_size), activation_function, resid_dropout, embed_dropout, attention_dropout,
        classifier_dropout (unused, kept for checkpoint compatibility), layer_norm_epsilon, initializer_range,
        use_cache, bos_token_id, eos_token_id, pad_token_id. ``attention_layers`` (one entry per layer) is derived.

    JAT fields:
        observation_loss_coef, action_loss_coef: the loss is ``obs_coef * obs_loss + act_coef * act_loss``
            (kappa); an ``observation_loss_coef`` of 0 skips observation prediction entirely.
        codecs: names of the registered codecs the model builds; ``None`` (the default, and the published
            checkpoint's config): every codec of the registry the model is built with, in registration order
            (the built-in five: continuous, discrete, image, vit, text); the model records the list it built.
        codec_settings: per-codec options a codec reads when it is built (:meth:`codec_setting`), as
            ``{codec name: {option: JSON value}}``; each codec documents its own (default: none, every codec
            builds the reference's layers).
        input_normalization: per-task mean and standard deviation of real-valued observation fields and rewards,
            ``{task: {field or "rewards": {"mean": [...], "std": [...]}}}``, applied by the processor in training
            and in play (:mod:`jat_core.normalization`; ``jat-train`` computes them from the training data);
            default: none, every input raw (the published checkpoint).
    """

    model_type = "jat"
    attribute_map = {"num_attention_heads": "num_heads", "num_hidden_layers": "num_layers"}

    # GPT-Neo trunk
    vocab_size: int = 50257
    max_position_embeddings: int = 512
    hidden_size: int = 768
    num_layers: int = 12
    attention_types: list | None = None
    num_heads: int = 12
    intermediate_size: int | None = None
    window_size: int = 256
    activation_function: str = "gelu_new"
    resid_dropout: float = 0.0
    embed_dropout: float = 0.0
    attention_dropout: float = 0.0
    classifier_dropout: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    pad_token_id: int | None = None
    tie_word_embeddings: bool = False
    # JAT (the codecs' own options are added by the codec plugins: see the module docstring)
    observation_loss_coef: float = 0.005
    action_loss_coef: float = 0.995
    codecs: list | None = None
    codec_settings: dict | None = None
    input_normalization: dict | None = None

    def __post_init__(self, **kwargs):
        self._validate_sizes()  # before anything is derived from them
        if self.attention_types is None:
            self.attention_types = alternating_attention_types(self.num_layers)
        try:
            self.attention_types = [[list(p), int(n)] for p, n in self.attention_types]
        except (TypeError, ValueError):
            _fail("attention_types", "a list of [pattern, repeats] pairs", self.attention_types)
        if self.codecs is not None:
            if not isinstance(self.codecs, (list, tuple)):
                _fail("codecs", "a list of codec names", self.codecs)
            self.codecs = list(self.codecs)
        if self.codec_settings is None:
            self.codec_settings = {}
        if self.input_normalization is None:
            self.input_normalization = {}
        kwargs.pop("attention_layers", None)  # derived below; configs on disk carry a copy
        super().__post_init__(**kwargs)
        self.attention_layers = expand_attention_types(self.attention_types)
        self._validate()

    def _validate_sizes(self) -> None:
        for name in ("vocab_size", "max_position_embeddings", "hidden_size", "num_layers", "num_heads", "window_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                _fail(name, "a positive int", value)

    def _validate(self) -> None:
        self._validate_sizes()  # again: PreTrainedConfig's __post_init__ may have set one through an alias
        if self.hidden_size % self.num_heads:
            _fail("hidden_size", f"a multiple of num_heads={self.num_heads}", self.hidden_size)
        if len(self.attention_layers) != self.num_layers:
            _fail("attention_types", f"{self.num_layers} layers (num_layers)", self.attention_types)
        if any(kind not in ("global", "local") for kind in self.attention_layers):
            _fail("attention_types", "'global' or 'local' per layer", self.attention_types)
        for name in ("observation_loss_coef", "action_loss_coef"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                _fail(name, "a non-negative finite number", value)
        if self.codecs is not None:
            if not self.codecs or not all(isinstance(c, str) and c for c in self.codecs):
                _fail("codecs", "a non-empty list of codec names", self.codecs)
            if len(set(self.codecs)) != len(self.codecs):
                _fail("codecs", "unique codec names", self.codecs)
        settings = self.codec_settings
        if not isinstance(settings, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) and all(isinstance(o, str) for o in v) for k, v in settings.items()
        ):
            _fail("codec_settings", "a dict {codec name: {option name: value}}", settings)
        problem = normalization.check(self.input_normalization)
        if problem is not None:
            _fail("input_normalization", problem, self.input_normalization)

    def codec_setting(self, codec: str, option: str, default: Any) -> Any:
        """The value of ``option`` in ``codec_settings[codec]``, or ``default`` when it is not set.

        Args:
            codec: the codec's registered name.
            option: the option's name, documented by the codec.
            default: what the codec builds without it (the reference's choice).
        """
        return self.codec_settings.get(codec, {}).get(option, default)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """Every name an override may use: the fields, their aliases (``attribute_map``, e.g. ``num_hidden_layers``),
        the options of the installed codecs and the other keyword arguments of ``PreTrainedConfig``
        (``attn_implementation``...)."""
        names = frozenset(f.name for f in dataclasses.fields(cls)) | frozenset(cls.attribute_map)
        return names | frozenset(installed_codec_options()) | PRETRAINED_KWARGS

    @classmethod
    def unknown_field(cls, name: str, *, where: str, extra: Iterable[str] = ()) -> ValueError:
        """The error for a name that is not a field: it suggests the closest valid name (difflib).

        Args:
            name: the unknown name.
            where: who refuses it, for the message (``"JatConfig.from_preset"``).
            extra: other names that ``where`` accepts besides the fields (``registry``).
        """
        valid = sorted(cls.field_names() | frozenset(extra))
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; the JAT fields are {sorted(cls._own_fields())}"
        return ValueError(f"{where}: unknown config field {name!r}{hint}")

    @classmethod
    def check_field_names(cls, names: Iterable[str], *, where: str) -> None:
        """Refuse any of ``names`` that is not a field (see :meth:`unknown_field`)."""
        valid = cls.field_names()
        for name in names:
            if name not in valid:
                raise cls.unknown_field(name, where=where)

    @classmethod
    def _own_fields(cls) -> frozenset[str]:
        """The fields JatConfig declares (the trunk's and JAT's), not transformers' generic ones."""
        generic = {f.name for f in dataclasses.fields(PreTrainedConfig)}
        return frozenset(f.name for f in dataclasses.fields(cls) if f.name not in generic)

    @classmethod
    def _fold(cls, fields: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        """``fields`` updated with ``overrides`` (aliases resolved); a new ``num_layers`` without
        ``attention_types`` drops the old pattern so that it is derived again."""
        overrides = {cls.attribute_map.get(k, k): v for k, v in overrides.items()}
        fields = {**fields, **overrides}
        if "num_layers" in overrides and "attention_types" not in overrides:
            fields.pop("attention_types", None)
        return fields

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> JatConfig | tuple[JatConfig, dict[str, Any]]:
        """Build a config from a dict (a ``config.json``), with overrides: transformers' ``from_dict``, except that
        overrides of JatConfig's own fields are applied before validation (an override such as ``num_layers=3`` is
        checked, and re-derives what depends on it) and, unless ``return_unused_kwargs=True`` (the model's
        ``from_pretrained`` passes what is left to the model), a keyword that is no field is a ``ValueError``.

        Keys of ``config_dict`` itself are not checked: files written by other versions may carry more.
        """
        if not isinstance(config_dict, dict):
            raise ValueError(f"JatConfig: expected a dict of fields (a JSON object), got {type(config_dict).__name__}")
        return_unused = kwargs.pop("return_unused_kwargs", False)
        own = cls._own_fields() | frozenset(cls.attribute_map) | frozenset(installed_codec_options())
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in own}
        config, unused = super().from_dict(cls._fold(config_dict, overrides), return_unused_kwargs=True, **kwargs)
        if return_unused:
            return config, unused
        if unused:
            raise cls.unknown_field(next(iter(unused)), where="JatConfig.from_pretrained")
        return config

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args: Any, **kwargs: Any):
        """transformers' ``from_pretrained``, checking a local ``config.json`` first (:func:`check_config_file`):
        a directory without one is an error, not the default config. Overrides are checked as in ``from_dict``."""
        path = os.fspath(pretrained_model_name_or_path)
        if os.path.isfile(path):
            check_config_file(path)
        elif os.path.isdir(path):
            check_config_file(os.path.join(path, kwargs.get("subfolder") or "", CONFIG_FILE))
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> JatConfig:
        """Build a config from a named preset.

        Args:
            name: ``"small"`` (the published jat-small shapes) or ``"tiny"`` (H=128, 2 layers, 4 heads).
            overrides: any field, e.g. ``vocab_size=512`` for a test tokenizer. Changing ``num_layers`` without
                ``attention_types`` re-derives the alternating global/local pattern.

        Returns:
            The config.

        Raises:
            ValueError: an unknown preset, an unknown field (naming the closest one), a bad value.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown JatConfig preset {name!r}; presets: {sorted(PRESETS)}")
        cls.check_field_names(overrides, where="JatConfig.from_preset")
        overrides = cls._fold({}, overrides)
        fields = {**PRESETS[name], **overrides}
        for token in ("bos_token_id", "eos_token_id"):  # GPT-2's 50256 does not exist in a small test vocabulary
            if token not in overrides and fields.get("vocab_size", cls.vocab_size) <= 50256:
                fields[token] = None
        return cls(**fields)


def check_config_file(file: str) -> None:
    """Check that ``file`` (a ``config.json``) exists and is a JSON object of a valid JAT config.

    Keys that are no field are let through: files written by other versions may carry more.

    Raises:
        CheckpointError: naming the file: missing, not JSON, not an object, another ``model_type``, a bad value.
    """
    if not os.path.isfile(file):
        raise CheckpointError(f"{file}: no such file; a JatModel directory holds {CONFIG_FILE} (save_pretrained writes it)")
    try:
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object of config fields, got a JSON {type(data).__name__}")
    if data.get("model_type", JatConfig.model_type) != JatConfig.model_type:
        raise CheckpointError(f"{file}: model_type {data['model_type']!r}, expected {JatConfig.model_type!r}")
    try:
        JatConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{file}: {exc}") from exc


AutoConfig.register("jat", JatConfig, exist_ok=True)
