"""Strict loading of saved :class:`jat_core.model.JatModel` weights (what ``JatModel.from_pretrained`` adds to
transformers' loader): safetensors only, every weight present with its shape, damaged files named.

A pickle checkpoint (``pytorch_model*.bin``) is refused without being opened (unpickling can run code); the
safetensors headers of a local directory are read before anything is loaded, so a truncated file is named; the
loading info transformers reports (missing, unexpected, wrong-shaped weights) becomes a :class:`CheckpointError`
instead of a log line and randomly initialised weights.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable
from typing import Any

from safetensors import SafetensorError, safe_open

from jat_core.config import CheckpointError

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
#: How many keys an error lists before it counts the rest.
SHOWN_KEYS = 8


def load_strict(load: Callable[..., Any], pretrained_model_name_or_path, *model_args, **kwargs):
    """Call transformers' ``from_pretrained`` (``load``, bound to the model class) strictly; see
    :meth:`jat_core.model.JatModel.from_pretrained` for the rules and the arguments."""
    if kwargs.pop("use_safetensors", None) is False:
        raise ValueError("use_safetensors=False: JatModel loads safetensors weights only (pickle files are refused)")
    want_info = kwargs.pop("output_loading_info", False)
    allow_mismatched = bool(kwargs.pop("ignore_mismatched_sizes", False))
    source = None if pretrained_model_name_or_path is None else os.fspath(pretrained_model_name_or_path)
    given_weights = kwargs.get("state_dict") is not None
    weights = "state_dict" if given_weights else f"{source}: {WEIGHTS_FILE}"  # what errors name
    if source is not None and os.path.isdir(source) and not given_weights:
        weights = check_weight_files(os.path.join(source, kwargs.get("subfolder") or ""))
    try:
        # mismatched sizes are reported in the loading info (checked below) instead of a bare RuntimeError
        model, info = load(
            pretrained_model_name_or_path, *model_args, output_loading_info=True, ignore_mismatched_sizes=True,
            use_safetensors=True, **kwargs,
        )
    except SafetensorError as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file, truncated or damaged? ({exc})") from exc
    check_loading_info(info, weights, allow_mismatched=allow_mismatched)
    return (model, info) if want_info else model


def check_weight_files(folder: str) -> str:
    """Check that the safetensors files of the checkpoint in ``folder`` have readable headers; a pickle checkpoint
    (``pytorch_model*.bin``) is refused without being opened. Returns the weights file (or the shards' index)."""
    index = os.path.join(folder, WEIGHTS_INDEX_FILE)
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{index}: expected a JSON object with a 'weight_map' of shard files ({exc!r})") from exc
        files = [os.path.join(folder, shard) for shard in shards]
    elif os.path.isfile(os.path.join(folder, WEIGHTS_FILE)):
        files = [os.path.join(folder, WEIGHTS_FILE)]
    else:
        pickles = sorted(glob.glob(os.path.join(glob.escape(folder), "pytorch_model*.bin*")))
        if pickles:
            raise CheckpointError(
                f"{pickles[0]}: a pickle checkpoint, refused (loading a pickle can run code); JatModel loads "
                f"{WEIGHTS_FILE} only: load it with trusted code and save_pretrained it"
            )
        raise CheckpointError(f"{os.path.join(folder, WEIGHTS_FILE)}: no such file (the weights save_pretrained writes)")
    for file in files:
        if not os.path.isfile(file):
            raise CheckpointError(f"{file}: no such file (a shard listed in {index})")
        try:
            with safe_open(file, framework="pt") as f:
                f.keys()
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{file}: not a readable safetensors file, truncated or damaged? ({exc})") from exc
    return index if os.path.isfile(index) else files[0]


def check_loading_info(info: dict[str, Any], weights: str, *, allow_mismatched: bool) -> None:
    """Raise when transformers' loading info reports missing, unexpected or (unless allowed) wrong-shaped weights.

    Weights that the model ties to others are not reported missing by transformers (JatModel ties none:
    ``lm_head`` is its own tensor)."""

    def listed(keys: list[str]) -> str:
        more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
        return ", ".join(keys[:SHOWN_KEYS]) + more

    problems = []
    if info.get("missing_keys"):
        problems.append(f"missing weights {listed(sorted(info['missing_keys']))}")
    if info.get("unexpected_keys"):
        problems.append(f"unexpected weights {listed(sorted(info['unexpected_keys']))}")
    if info.get("mismatched_keys") and not allow_mismatched:
        shapes = [
            f"{key} (model {tuple(model_shape)}, file {tuple(file_shape)})"
            for key, file_shape, model_shape in sorted(info["mismatched_keys"])
        ]
        problems.append(f"wrong shapes {listed(shapes)}")
    if problems:
        raise CheckpointError(f"{weights}: the weights do not fit the model: {'; '.join(problems)}")
