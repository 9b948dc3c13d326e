"""Plugin manager: discovery through entry points, inline plugins, and every error it must report."""

import subprocess
import sys
import types

import pytest
import torch
from jat_core import FieldSpec, TaskSpec, hookimpl, installed_plugins, load_plugins
from jat_core.codec import Codec
from jat_core.plugins import PluginError


class _Tiny(Codec):
    name = "tiny"
    roles = ("observation", "action")
    columns = {"observation": "tiny_observations", "action": "tiny_actions"}


def codec_plugin(*names):
    """An inline codec plugin (the llm/datasette pattern): a namespace with a hook implementation."""

    @hookimpl
    def jat_register_codecs(register):
        for n in names:
            register(n, lambda config, shared: _Tiny())

    return types.SimpleNamespace(jat_register_codecs=jat_register_codecs)


def task_plugin(*names, codec="tiny"):
    @hookimpl
    def jat_register_tasks(register):
        for n in names:
            register(
                TaskSpec(
                    name=n,
                    domain="toy",
                    observation=(FieldSpec("tiny_observations", codec, (2,)),),
                    action=FieldSpec("tiny_actions", codec, (), "int64", n=3),
                )
            )

    return types.SimpleNamespace(jat_register_tasks=jat_register_tasks)


def test_inline_plugins_register_codecs_and_tasks():
    reg = load_plugins(extra={"c": codec_plugin("tiny"), "t": task_plugin("toy-a", "toy-b")}, entry_points=False)
    assert list(reg.tasks) == ["toy-a", "toy-b"]
    assert reg.codec_owner["tiny"] == "c" and reg.task_owner["toy-b"] == "t"
    assert isinstance(reg.build_codec("tiny", None, None), torch.nn.Module)
    assert [t.name for t in reg.select("toy")] == ["toy-a", "toy-b"]
    assert [t.name for t in reg.select("toy-b,toy-a")] == ["toy-b", "toy-a"]
    assert reg.domains() == {"toy": ["toy-a", "toy-b"]}


def test_duplicate_codec_names_both_plugins():
    with pytest.raises(PluginError, match=r"codec 'tiny' is registered twice: by plugin 'first' and by plugin 'second'"):
        load_plugins(extra={"first": codec_plugin("tiny"), "second": codec_plugin("tiny")}, entry_points=False)


def test_duplicate_task_names_both_plugins():
    plugins = {"c": codec_plugin("tiny"), "one": task_plugin("toy-a"), "two": task_plugin("toy-a")}
    with pytest.raises(PluginError, match=r"task 'toy-a' is registered twice: by plugin 'one' and by plugin 'two'"):
        load_plugins(extra=plugins, entry_points=False)


def test_unknown_codec_in_a_task_is_refused_at_registration():
    with pytest.raises(PluginError, match=r"field 'tiny_observations' uses codec 'nope'.*registered codecs: \['tiny'\]"):
        load_plugins(extra={"c": codec_plugin("tiny"), "t": task_plugin("toy-a", codec="nope")}, entry_points=False)


def test_unknown_plugin_lists_installed_ones():
    with pytest.raises(PluginError) as err:
        load_plugins(["no-such-plugin"])
    msg = str(err.value)
    assert "no-such-plugin" in msg and "installed plugins" in msg
    for name in installed_plugins():
        assert name in msg


def test_invalid_hook_implementation_is_refused():
    @hookimpl
    def jat_register_everything(register):  # not a hook of ours
        pass

    bad = types.SimpleNamespace(jat_register_everything=jat_register_everything)
    with pytest.raises(PluginError, match="jat_register_everything"):
        load_plugins(extra={"bad": bad}, entry_points=False)


def test_wrong_hook_argument_is_refused():
    @hookimpl
    def jat_register_tasks(registry):  # wrong argument name
        pass

    with pytest.raises(PluginError, match="(?s)plugin 'bad' is invalid.*registry"):
        load_plugins(extra={"bad": types.SimpleNamespace(jat_register_tasks=jat_register_tasks)}, entry_points=False)


def test_register_rejects_non_taskspec():
    @hookimpl
    def jat_register_tasks(register):
        register({"name": "x"})

    with pytest.raises(PluginError, match="plugin 'bad'.*TaskSpec, got dict"):
        load_plugins(extra={"bad": types.SimpleNamespace(jat_register_tasks=jat_register_tasks)}, entry_points=False)


def test_unknown_task_suggests_close_names():
    reg = load_plugins(extra={"c": codec_plugin("tiny"), "t": task_plugin("toy-walk", "toy-run")}, entry_points=False)
    with pytest.raises(KeyError, match="Did you mean: toy-walk"):
        reg.task("toy-wlak")


def test_unknown_codec_name_lists_registered():
    reg = load_plugins(extra={"c": codec_plugin("tiny")}, entry_points=False)
    with pytest.raises(PluginError, match=r"unknown codec 'huge'; registered codecs: \['tiny'\]"):
        reg.build_codec("huge", None, None)


def test_selection_by_name_and_env_var(monkeypatch):
    extra = {"c": codec_plugin("tiny"), "a": task_plugin("toy-a"), "b": task_plugin("toy-b")}
    reg = load_plugins(["a"], extra=extra, entry_points=False)
    assert list(reg.tasks) == ["toy-a"] and "tiny" in reg.codecs  # codec-only plugins are always loaded
    monkeypatch.setenv("JAT_PLUGINS", "b")
    reg = load_plugins(extra=extra, entry_points=False)
    assert list(reg.tasks) == ["toy-b"]
    reg = load_plugins("a,b", extra=extra, entry_points=False)
    assert list(reg.tasks) == ["toy-a", "toy-b"]


def test_real_entry_points_are_discovered():
    plugins = installed_plugins()
    assert plugins["codecs"].distribution == "jat-codecs"
    for domain in ("atari", "babyai", "metaworld", "mujoco", "text"):
        assert plugins[domain].distribution == "jat-envs"
        assert plugins[domain].version == plugins["codecs"].version  # versions move in lockstep
    reg = load_plugins(["babyai"])
    assert "babyai" in reg.plugins and "atari" not in reg.plugins and "codecs" in reg.plugins


def test_broken_plugin_says_which(tmp_path):
    """A plugin whose module fails to import is named, through a real (fake-installed) entry point."""
    dist = tmp_path / "broken_jat-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-jat\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[jat]\nbroken = broken_jat_mod\n")
    (tmp_path / "broken_jat_mod.py").write_text("raise RuntimeError('boom')\n")
    code = "from jat_core import load_plugins\nload_plugins(['broken'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path))
    assert out.returncode != 0
    assert "plugin 'broken' (broken_jat_mod) failed to import" in out.stderr and "boom" in out.stderr


def _env(path):
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = f"{path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.pop("JAT_PLUGINS", None)
    return env


def test_jat_plugins_cli_lists_plugins_and_tasks():
    out = subprocess.run([sys.executable, "-m", "jat_core.cli"], capture_output=True, text=True, check=True)
    assert "codecs  [jat-codecs 0.1.0]" in out.stdout
    assert "babyai  [jat-envs 0.1.0]" in out.stdout
    tasks = subprocess.run(
        [sys.executable, "-m", "jat_core.cli", "--tasks"], capture_output=True, text=True, check=True
    ).stdout.split()
    reg = load_plugins()
    assert tasks == list(reg.tasks)


def test_jat_plugins_cli_unknown_plugin():
    out = subprocess.run(
        [sys.executable, "-m", "jat_core.cli", "--plugins", "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "unknown plugin(s) ['nope']" in out.stderr


def test_no_domain_names_in_core_or_train():
    """Domain names and env ids live in jat-envs; the core and the trainer only know plugins."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "packages"
    pattern = re.compile(r"atari|babyai|metaworld|meta-world|mujoco|ALE/|BabyAI-|-v[345]\b", re.IGNORECASE)
    offenders = []
    for pkg in ("jat-core", "jat-train"):
        for path in (root / pkg / "src").rglob("*.py"):
            for lineno, line in enumerate(_code_lines(path.read_text()), 1):
                if line and pattern.search(line):
                    offenders.append(f"{path.relative_to(root)}:{lineno}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_no_codec_names_in_core_or_train():
    """Modality knowledge lives in the codec plugins: outside docstrings and comments, the code of jat-core and
    jat-train holds no string naming an installed codec (a whole word: ``"vit"``, ``"codecs.text.x"``, ``"a text
    task"``), no string that is a codec's column or option (``"input_ids"``, ``"max_continuous_size"``) and no
    identifier that is a codec option (``config.image_size``). Identifiers may share a column's name:
    ``input_ids`` is also transformers' own name for token ids (GPT-Neo's ``forward``, ``generate``)."""
    import ast
    import pathlib
    import re

    from jat_core.plugins import installed_codec_options
    from jat_core.processor import JatProcessor

    codecs = JatProcessor(None).all_codecs()
    columns = {column for codec in codecs.values() for column in codec.columns.values()}
    options = set(installed_codec_options())
    assert {"continuous", "discrete", "image", "vit", "text"} <= set(codecs) and "input_ids" in columns
    word = re.compile(r"\b(" + "|".join(map(re.escape, codecs)) + r")\b")
    root = pathlib.Path(__file__).resolve().parents[2] / "packages"
    offenders = []
    for pkg in ("jat-core", "jat-train"):
        for path in sorted((root / pkg / "src").rglob("*.py")):
            tree = ast.parse(path.read_text())
            docstrings = {
                id(node.value) for node in ast.walk(tree)
                if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    bad = node.value in columns | options or word.search(node.value)
                else:
                    name = getattr(node, "id", None) or getattr(node, "attr", None) or getattr(node, "arg", None)
                    bad = isinstance(name, str) and name in options
                if bad:
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not offenders, "\n".join(offenders)


def _code_lines(source: str):
    """Source lines with comments and docstrings blanked (they may name domains)."""
    import io
    import tokenize

    lines = source.splitlines()
    keep = [""] * len(lines)
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            continue
        if tok.type == tokenize.STRING and (prev is None or prev.type in (tokenize.INDENT, tokenize.NEWLINE, tokenize.NL, tokenize.DEDENT)):
            prev = tok
            continue  # a docstring / bare string statement
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            row = tok.start[0] - 1
            keep[row] += " " + tok.string
        prev = tok
    return keep
