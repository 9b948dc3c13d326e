"""A cache of collected data, keyed by what produced it.

An entry is ``CACHE/<task>/<key>/<task>/`` (a ``jat-collect --out CACHE/<task>/<key>`` folder), where ``key`` is
a hash of the task name, the collection options (episodes or step budget, seed, policy, action noise, input
folder) and the version of the distribution that provides the task's expert, with ``recipe.json`` beside it
saying what the key stands for. A run writes an entry into a private ``<key>.partial-<pid>`` folder and renames
it into place once ``jat-collect`` succeeded, so a killed collection or a full disk never leaves an entry that
looks complete (a write that fails names its file and cause, :mod:`jat_train.files`) and two runs filling the same
cache never mix their files. A run folder's ``data/`` links to the entries
(:func:`link_data`), so ``jat-train --data RUN/data`` and ``jat-eval --data`` read them like any local data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from jat_train.files import atomic_write, writing

#: written last into an entry: its presence says the entry is complete
RECIPE_FILE = "recipe.json"


@dataclass(frozen=True)
class CacheEntry:
    """One task's collected data for one set of options."""

    root: Path
    task: str
    options: dict[str, Any]
    key: str

    @property
    def folder(self) -> Path:
        """``CACHE/<task>/<key>``: the ``jat-collect --out`` folder of this entry."""
        return self.root / self.task / self.key

    @property
    def data_dir(self) -> Path:
        """``CACHE/<task>/<key>/<task>``: the task's data set folder."""
        return self.folder / self.task

    def ready(self) -> bool:
        """Whether the entry is complete (its data set and its ``recipe.json`` are there)."""
        return (self.folder / RECIPE_FILE).is_file() and self.data_dir.is_dir()

    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """A private folder to collect into; published as the entry when the block succeeds, removed otherwise.

        Raises:
            OSError: ``recipe.json`` could not be written (a full disk): naming it and the cause; the entries
                already published are left as they were.
        """
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        private = self.folder.with_name(f"{self.key}.partial-{os.getpid()}-{id(self)}")
        shutil.rmtree(private, ignore_errors=True)
        try:
            yield private
            recipe = json.dumps({"task": self.task, **self.options}, indent=2) + "\n"
            atomic_write(private / RECIPE_FILE, lambda tmp: Path(tmp).write_text(recipe),
                         note=f"the cache entry {str(self.folder)!r} was not written")
            if self.ready():  # another run published the same entry meanwhile: keep the first
                return
            os.replace(private, self.folder)
        finally:
            shutil.rmtree(private, ignore_errors=True)


def cache_entry(root: str | os.PathLike, task: str, options: dict[str, Any]) -> CacheEntry:
    """The entry of ``task`` collected with ``options`` (JSON-able), its key including the versions of the
    distributions that make data (so a new expert release collects afresh)."""
    stamped = {**options, "versions": _versions()}
    blob = json.dumps({"task": task, **stamped}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return CacheEntry(Path(root), task, stamped, key)


def _versions() -> dict[str, str]:
    """Versions of the installed jat distributions (experts live in plugins, the writer in jat-train)."""
    out = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("jat-"):
            out[name] = dist.version
    return dict(sorted(out.items()))


def link_data(folders: dict[str, Path], data: Path) -> None:
    """Make ``data/<task>`` a symbolic link to each task's cached data folder (replacing older links)."""
    data.mkdir(parents=True, exist_ok=True)
    for task, folder in folders.items():
        link = data / task
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        tmp = data / f".{task}.link-{os.getpid()}"
        with writing(link):
            if tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(folder.resolve(), target_is_directory=True)
            os.replace(tmp, link)
