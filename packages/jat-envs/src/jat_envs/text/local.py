"""``text-local``: a language-modelling task whose documents are local plain-text files.

``jat-collect --tasks text-local --episodes N --out DIR [--input-dir FOLDER]`` writes ``DIR/text-local/`` in the
schema of the hub's ``oscar`` / ``wikipedia`` configurations (one column ``text``, one document per row), from:

- ``FOLDER``: every ``*.txt`` file under it (recursively), read as UTF-8;
- no folder: the docstrings of the Python standard library this interpreter ships (read from its ``.py``
  sources with :mod:`ast`, never imported), a corpus every machine with Python has. It depends on the Python
  version (3.12's docstrings are not 3.13's); the same version gives the same documents.

Files are taken in a shuffled order (seeded), each cut into pieces of at most :data:`CHUNK_CHARS` characters at
paragraph breaks (blank lines), with the lines of each paragraph joined by single spaces (docstrings and most
plain-text files are hard-wrapped: their line breaks say nothing about the text), and the pieces of one file
follow each other: ``jat-collect`` puts the last pieces in the
``test`` split, so held-out text comes from files the training split mostly never saw.
"""

from __future__ import annotations

import ast
import os
import re
import sysconfig
from collections.abc import Iterator

#: longest piece of a document (characters); longer documents are cut at paragraph breaks
CHUNK_CHARS = 2000
#: standard-library folders left out of the default corpus: tests (their docstrings describe test cases, some
#: files do not parse on purpose), IDLE, the turtle demos, third-party installs
SKIPPED_DIRS = frozenset({"test", "tests", "idle_test", "idlelib", "turtledemo", "site-packages", "dist-packages",
                          "__pycache__", "lib2to3", "ensurepip"})


def chunks(text: str, max_chars: int = CHUNK_CHARS) -> list[str]:
    """Cut ``text`` into pieces of at most ``max_chars`` characters: whole paragraphs (blank-line separated, each
    unwrapped: its whitespace runs made single spaces) joined greedily by blank lines, a paragraph longer than
    ``max_chars`` cut at whitespace. Empty text gives no piece."""
    pieces: list[str] = []
    current = ""
    for paragraph in (" ".join(p.split()) for p in re.split(r"\n[ \t]*\n", text)):
        if not paragraph:
            continue
        while len(paragraph) > max_chars:  # a very long paragraph: cut at the last whitespace that fits
            cut = paragraph.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            if current:
                pieces.append(current)
                current = ""
            pieces.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if current and len(current) + 2 + len(paragraph) > max_chars:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        pieces.append(current)
    return pieces


def docstrings(source: str) -> list[str]:
    """The docstrings of a module's source, in source order: the module's, then each class's and function's
    (nested ones included), cleaned like ``inspect.cleandoc``."""
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc and doc.strip():
                out.append(doc.strip())
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return out


def stdlib_files(root: str | None = None) -> list[str]:
    """The standard library's ``.py`` files (sorted paths), without :data:`SKIPPED_DIRS`."""
    root = root or sysconfig.get_paths()["stdlib"]
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py")]
    return sorted(files)


def stdlib_documents(root: str | None = None) -> list[str]:
    """One document per standard-library module: its docstrings joined by blank lines (modules without one, or
    whose source does not parse with this interpreter, are left out)."""
    documents = []
    for path in stdlib_files(root):
        try:
            with open(path, encoding="utf-8") as f:
                found = docstrings(f.read())
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        if found:
            documents.append("\n\n".join(found))
    return documents


def text_files(folder: str) -> list[str]:
    """The ``*.txt`` files under ``folder`` (recursively, sorted).

    Raises:
        ValueError: ``folder`` does not exist, is not a directory, or holds no ``.txt`` file (naming it).
    """
    if not os.path.exists(folder):
        raise ValueError(f"--input-dir: no such directory {folder!r} (task 'text-local' reads its *.txt files)")
    if not os.path.isdir(folder):
        raise ValueError(f"--input-dir: expected a directory of *.txt files, {folder!r} is a file")
    files = sorted(
        os.path.join(d, n) for d, _, names in os.walk(folder) for n in names if n.lower().endswith(".txt")
    )
    if not files:
        raise ValueError(f"--input-dir: {folder!r} holds no *.txt file (task 'text-local' reads them)")
    return files


def file_documents(folder: str) -> list[str]:
    """One document per ``*.txt`` file under ``folder`` (whitespace-only files left out).

    Raises:
        ValueError: see :func:`text_files`; a file that is not UTF-8 text (naming it); no file with text.
    """
    documents = []
    for path in text_files(folder):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if text.strip():
            documents.append(text)
    if not documents:
        raise ValueError(f"--input-dir: every *.txt file under {folder!r} is empty")
    return documents


def text_samples(seed: int = 0, input_dir: str | None = None) -> Iterator[dict[str, str]]:
    """The ``samples`` source of ``text-local``: rows ``{"text": piece}``, file after file in a seeded order.

    Args:
        seed: seeds the order of the files.
        input_dir: a folder of ``*.txt`` files; ``None``: the standard library's docstrings.

    Raises:
        ValueError: a missing or empty ``input_dir``, or a file that is not UTF-8 (naming it).
    """
    import numpy as np

    documents = file_documents(os.path.expanduser(input_dir)) if input_dir else stdlib_documents()
    if not documents:
        raise ValueError("task 'text-local': no document found (give --input-dir with *.txt files)")
    for i in np.random.default_rng(seed).permutation(len(documents)):
        for piece in chunks(documents[int(i)]):
            yield {"text": piece}
