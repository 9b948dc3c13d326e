"""``jat-convert SRC OUT``: turn a checkpoint in the published JAT format into ours.

The published format (``jat-project/jat``): ``config.json`` (a ``GPTNeoConfig`` plus JAT fields, with an
``auto_map`` to remote code, ignored here) and ``model.safetensors`` (or ``pytorch_model.bin``, read with
``weights_only=True``; or sharded with an ``.index.json``). ``SRC`` is such a directory, or a hub id (downloaded
with ``huggingface_hub``). ``OUT`` receives ``JatModel.save_pretrained`` output (safetensors) plus the tokenizer and
image-processor files found in ``SRC``, so that::

    model = JatModel.from_pretrained(OUT)

Conversion is a plain key map (:func:`key_map`): the trunk keeps its names, and each codec declares how the
published format names the weights it brings (``Codec.reference_keys``: its own layers, the names the reference
gave the shared token table and head, and dead weights to drop); the token table may be stored under several
names (one tensor, checked equal when several are present); anything else unknown is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from typing import Any

import torch

from jat_core.config import JatConfig

#: Reference key prefix -> our key prefix, for the trunk; the codecs add theirs (:func:`key_map`).
KEY_MAP: dict[str, str | None] = {"transformer.": "transformer."}
TOKEN_TABLE = "transformer.wte.weight"
#: Reference keys that are dropped: non-persistent attention buffers of old GPT-Neo versions.
DROPPED_SUFFIXES = (".attn.attention.bias", ".attn.attention.masked_bias")
#: config.json keys that are about the file or remote code, not the model.
IGNORED_CONFIG_KEYS = ("auto_map", "architectures", "model_type", "transformers_version", "torch_dtype", "dtype",
                       "tokenizer_class", "attention_layers", "_name_or_path")
#: Files copied from SRC to OUT when present (tokenizer, image processor).
EXTRA_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
               "added_tokens.json", "preprocessor_config.json", "processor_config.json", "generation_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def resolve_source(src: str) -> str:
    """A local directory for ``src``: itself, or a hub snapshot of the config, weights and tokenizer files.

    ``src`` is a local path when :func:`jat_core.cli.looks_like_local_path` says so (``./x``, ``/x``, ``a/b/c``,
    anything that exists...): such a path that does not exist is reported as missing, never looked up on the
    hub. Otherwise it is a hub id (``owner/name``).

    Raises:
        UserError: a missing local path, or a file where a directory is expected.
    """
    from jat_core.cli import check_source

    src = check_source(src, "SRC")
    if os.path.isdir(src):
        return src
    from huggingface_hub import snapshot_download

    patterns = ["config.json", "*.safetensors", "*.index.json", "pytorch_model*.bin", *EXTRA_FILES]
    try:
        return snapshot_download(src, allow_patterns=patterns)
    except Exception as exc:  # offline, unknown repo: one line naming SRC
        raise ValueError(f"SRC: could not download the hub checkpoint {src!r} ({type(exc).__name__}: {exc})") from exc


def read_state_dict(directory: str) -> dict[str, torch.Tensor]:
    """Read the weights of a published-format checkpoint directory (safetensors first, then ``.bin``).

    Raises:
        ValueError: no weights file, or a damaged one (the message names the file).
    """
    from safetensors.torch import load_file

    def load(name: str) -> dict[str, torch.Tensor]:
        path = os.path.join(directory, name)
        try:
            if name.endswith(".safetensors"):
                return load_file(path)
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, garbage, not a state dict: name the file
            raise ValueError(f"SRC: cannot read the weights file {path!r} ({type(exc).__name__}: {exc})") from exc

    for name in WEIGHT_FILES:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        if name.endswith(".index.json"):
            shards = sorted(set(_read_json(path, "weight_map")["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(load(shard))
            return state
        return load(name)
    raise ValueError(f"SRC {directory!r}: expected one of {WEIGHT_FILES}, found {sorted(os.listdir(directory))}")


def _read_json(path: str, *required: str) -> dict[str, Any]:
    """A JSON object from ``path``, with the ``required`` keys; a damaged file is a ``ValueError`` naming it."""
    try:
        with open(path) as f:
            value = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"SRC: {path!r} is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"SRC: {path!r}: expected a JSON object, got {type(value).__name__}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ValueError(f"SRC: {path!r}: expected the keys {missing}")
    return value


def read_config(directory: str, **overrides: Any) -> JatConfig:
    """Our config from a published ``config.json`` (``auto_map`` and file metadata ignored).

    Raises:
        ValueError: no ``config.json``, a damaged one, or fields ``JatConfig`` refuses (the message names it).
    """
    path = os.path.join(directory, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"SRC {directory!r}: expected a config.json, found {sorted(os.listdir(directory))}")
    raw = _read_json(path)
    fields = {k: v for k, v in raw.items() if k not in IGNORED_CONFIG_KEYS}
    fields.update(overrides)
    try:
        return JatConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"SRC: {path!r}: {exc}") from exc


def key_map(codecs: dict[str, Any] | None = None) -> dict[str, str | None]:
    """Reference key prefix -> our key prefix (``None``: dropped): the trunk's and every codec's
    ``reference_keys``. The longest matching prefix wins.

    Args:
        codecs: the model's codecs (default: every codec of the installed plugins).
    """
    if codecs is None:
        from jat_core.processor import JatProcessor

        codecs = JatProcessor(None).all_codecs()
    out = dict(KEY_MAP)
    for codec in codecs.values():
        out.update(codec.reference_keys)
    return out


def map_keys(state: dict[str, torch.Tensor], codecs: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Rename a published state dict to our parameter names (see :func:`key_map`; ``codecs``: the model's).

    Raises:
        ValueError: token-table aliases that differ, no token table, or keys this map does not know.
    """
    keys = key_map(codecs)
    aliases = (TOKEN_TABLE, *(k for k, v in keys.items() if v == TOKEN_TABLE and k != TOKEN_TABLE))
    tables = {k: state[k] for k in aliases if k in state}
    if not tables:
        raise ValueError(f"checkpoint: expected a token table under one of {aliases}, found none")
    first_name, table = next(iter(tables.items()))
    for name, other in tables.items():
        if other.shape != table.shape or not torch.equal(other, table):
            raise ValueError(f"checkpoint: token table aliases {first_name!r} and {name!r} hold different tensors")
    out = {TOKEN_TABLE: table}
    unknown = []
    for key, value in state.items():
        if key in tables or key.endswith(DROPPED_SUFFIXES):
            continue
        prefix = max((p for p in keys if key.startswith(p)), key=len, default=None)
        if prefix is None:
            unknown.append(key)
        elif keys[prefix] is not None:
            out[keys[prefix] + key[len(prefix):]] = value
    if unknown:
        raise ValueError(f"checkpoint: unknown keys (not in the published format): {unknown[:10]}")
    return out


def convert(src: str, out: str | None = None, **config_overrides: Any):
    """Convert a published checkpoint, optionally writing it to ``out``.

    Args:
        src: checkpoint directory or hub id.
        out: output directory (``save_pretrained`` format, safetensors), or ``None`` to only return the model.
            Written atomically: into a temporary directory beside it, then moved in place, so a failed
            conversion leaves ``out`` as it was.
        config_overrides: config fields to change (e.g. ``codecs=[...]``).

    Returns:
        The converted :class:`jat_core.model.JatModel` (fp32, eval mode).

    Raises:
        ValueError: a missing or damaged source, or weights that do not fit the config (the message names the
            file or the parameter); ``out`` exists as a file.
    """
    from jat_core.cli import check_output_dir
    from jat_core.model import JatModel

    if out is not None:
        check_output_dir(out, "OUT")
    directory = resolve_source(src)
    config = read_config(directory, **config_overrides)
    # the names of every installed codec: a weight of a codec that config.codecs leaves out is then reported as
    # an unexpected parameter below, not as an unknown key
    state = map_keys(read_state_dict(directory))
    model = JatModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"checkpoint: missing parameters {missing[:10]}, unexpected parameters {unexpected[:10]}")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(f"checkpoint: {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    model.eval()
    if out is not None:
        _write_atomically(model, directory, out)
    return model


def _write_atomically(model, directory: str, out: str) -> None:
    """``save_pretrained`` plus the tokenizer files into a temporary sibling of ``out``, then moved in place.

    A new ``out`` is one rename; into an existing directory each file is moved with ``os.replace`` (files of
    ``out`` that the conversion does not write are kept).
    """
    import tempfile

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(os.path.abspath(out))}-", dir=parent)
    try:
        model.save_pretrained(tmp)
        for name in EXTRA_FILES:
            path = os.path.join(directory, name)
            if os.path.exists(path) and not os.path.exists(os.path.join(tmp, name)):
                shutil.copyfile(path, os.path.join(tmp, name))
        if not os.path.isfile(os.path.join(tmp, "config.json")) or not any(
            name.endswith(".safetensors") for name in os.listdir(tmp)
        ):
            raise OSError(f"OUT: nothing was written to {out!r} (save_pretrained wrote no config or weights)")
        if not os.path.exists(out):
            os.replace(tmp, out)
            return
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _main(argv: list[str] | None) -> int:
    from jat_core.cli import add_debug_flag

    parser = argparse.ArgumentParser(prog="jat-convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", metavar="SRC", help="published checkpoint directory or hub id (e.g. jat-project/jat)")
    parser.add_argument("out", metavar="OUT", help="output directory, loadable with JatModel.from_pretrained")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    model = convert(args.src, args.out)
    if not os.path.isfile(os.path.join(args.out, "config.json")):  # never claim a write that did not happen
        raise OSError(f"OUT: nothing was written to {args.out!r}")
    print(f"jat-convert: wrote {args.out} ({model.num_parameters():,} parameters)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jat-convert SRC OUT``. Returns the process exit code (2: bad input, see
    :func:`jat_core.cli.run_console_script`)."""
    from jat_core.cli import run_console_script

    return run_console_script("jat-convert", _main, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
