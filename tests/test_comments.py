"""Comments and docstrings of the packages and bench/, and the Makefile's comments, say why, not when or how fast: no dates, no session talk, no timings.

Measurements belong in docs/benchmarks.md (with their command, date and code version), history in git.
"""

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "packages").glob("*/src/**/*.py")) + sorted((ROOT / "bench").glob("*.py"))
FORBIDDEN = [
    (re.compile(r"\b20\d\d-\d\d-\d\d\b"), "a date"),
    (re.compile(r"\bsessions?\b", re.I), "a session"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|milliseconds|seconds|minutes)\b"), "a timing"),
    (re.compile(r"\b(about|took|takes|taking|costs?) \d+(\.\d+)? s\b"), "a timing"),
    (re.compile(r"\b\d+(\.\d+)?\s?x (faster|slower)\b"), "a speed-up"),
    (re.compile(r"\b\d+(\.\d+)?\s?% (faster|slower)\b"), "a speed-up"),
]


def _prose(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every comment and docstring of a module."""
    found = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    return found


def _problems(name: str, prose: list[tuple[int, str]]) -> list[str]:
    return [
        f"{name}:{line}: {what}: {match.group(0)!r}"
        for line, text in prose
        for pattern, what in FORBIDDEN
        for match in [pattern.search(text)]
        if match
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_comments_and_docstrings_hold_no_dates_or_timings(path):
    problems = _problems(str(path.relative_to(ROOT)), _prose(path.read_text(encoding="utf-8")))
    assert not problems, "\n".join(problems)


def test_makefile_comments_hold_no_dates_or_timings():
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    comments = [(i, line) for i, line in enumerate(lines, 1) if line.lstrip().startswith("#")]
    problems = _problems("Makefile", comments)
    assert not problems, "\n".join(problems)
