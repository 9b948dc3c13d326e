"""MkDocs hook: pages that are generated from the code at build time, so they cannot go stale.

A page asks for a generated part with a marker on a line of its own:

- ``<!-- jat:console-scripts -->``: every console script declared in ``packages/*/pyproject.toml``
  (``[project.scripts]``), each with the ``--help`` text of its own argparse parser;
- ``<!-- jat:model-config -->``: the fields of :class:`jat_core.config.JatConfig` with their defaults, and the
  options that the installed codec plugins declare;
- ``<!-- jat:train-config -->``: the fields of :class:`jat_train.training.train_config.TrainConfig` with their defaults.

The packages' sources of this checkout come first on ``sys.path``, so the pages describe the code beside them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import importlib
import inspect
import io
import os
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
#: width of the generated help texts (argparse reads it from $COLUMNS)
HELP_COLUMNS = "100"

for src in reversed([str(p / "src") for p in PACKAGES]):
    if src not in sys.path:
        sys.path.insert(0, src)


def console_scripts() -> list[tuple[str, str, str]]:
    """``(package, script, "module:function")`` for every console script of the workspace's packages."""
    found = []
    for package in PACKAGES:
        meta = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        for script, target in meta.get("scripts", {}).items():
            found.append((meta["name"], script, target))
    return found


def help_text(target: str) -> str:
    """The ``--help`` output of the console script whose entry point is ``target`` ("module:function")."""
    module, _, function = target.partition(":")
    main = getattr(importlib.import_module(module), function)
    out, old = io.StringIO(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(["--help"])
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    text = out.getvalue().strip()
    if not text.startswith("usage:"):
        raise RuntimeError(f"{target} --help printed no usage: {text[:200]!r}")
    return text


def console_scripts_markdown() -> str:
    """One section per console script: its package, its entry point and its ``--help``."""
    parts = []
    for package, script, target in console_scripts():
        parts.append(
            f"## `{script}`\n\nFrom `{package}` (entry point `{target}`).\n\n```text\n{help_text(target)}\n```\n"
        )
    return "\n".join(parts)


def _code(text: str) -> str:
    """``text`` as inline code that is safe in a Markdown table cell (pipes escaped)."""
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _default(value) -> str:
    if isinstance(value, dataclasses.Field):
        value = value.default_factory() if value.default_factory is not dataclasses.MISSING else value.default
    return _code(repr(value))


def _annotation(kind) -> str:
    return _code(kind if isinstance(kind, str) else getattr(kind, "__name__", repr(kind)))


def model_config_markdown() -> str:
    """The table of ``JatConfig`` fields (name, type, default) and of the codec options of installed plugins."""
    from jat_core.config import JatConfig
    from jat_core.plugins import installed_codec_options

    rows = ["| field | type | default |", "| --- | --- | --- |"]
    for name, kind in inspect.get_annotations(JatConfig).items():
        if not name.startswith("_") and hasattr(JatConfig, name):
            rows.append(f"| `{name}` | {_annotation(kind)} | {_default(getattr(JatConfig, name))} |")
    options = installed_codec_options()
    rows += ["", "Options declared by the installed codec plugins (top-level fields of `config.json`):", ""]
    rows += ["| option | default |", "| --- | --- |"]
    rows += [f"| `{name}` | {_default(value)} |" for name, value in sorted(options.items())]
    return "\n".join(rows) + "\n"


def train_config_markdown() -> str:
    """The table of ``TrainConfig`` fields (name, type, default)."""
    from jat_train.training.train_config import TrainConfig

    rows = ["| field | type | default |", "| --- | --- | --- |"]
    for f in dataclasses.fields(TrainConfig):
        rows.append(f"| `{f.name}` | {_annotation(f.type)} | {_default(f)} |")
    return "\n".join(rows) + "\n"


GENERATORS = {
    "<!-- jat:console-scripts -->": console_scripts_markdown,
    "<!-- jat:model-config -->": model_config_markdown,
    "<!-- jat:train-config -->": train_config_markdown,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs event: replace each marker line of the page with its generated Markdown."""
    for marker, generate in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
