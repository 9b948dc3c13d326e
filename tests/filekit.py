"""File helpers shared by the test folders (``tests/`` is on ``sys.path``: pytest puts the directory of the root
``conftest.py`` there)."""

import os


def snapshot(root) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes): compare two snapshots to prove that a call that must
    fail changed nothing on disk."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out
