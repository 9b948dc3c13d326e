"""Wall time per phase and peak memory of a run's whole process tree (for ``jat-generalist``'s report)."""

from __future__ import annotations

import contextlib
import datetime
import platform
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psutil


class PhaseClock:
    """Times named phases and samples the resident memory of this process and all its descendants.

    Use as a context manager around the run (the sampler thread runs inside it) and :meth:`phase` around each
    phase. Memory is the sum of the resident set sizes of the process tree, sampled every ``interval`` seconds:
    processes side by side count together.
    """

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.phases: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_bytes = 0

    def __enter__(self) -> PhaseClock:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name`` and record its peak memory."""
        self._current = {"phase": name, "peak_bytes": 0}
        start = time.perf_counter()
        try:
            yield
        finally:
            self._current["seconds"] = time.perf_counter() - start
            self.phases.append(self._current)
            self._current = None

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.interval):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak_bytes = max(self.peak_bytes, total)
            current = self._current
            if current is not None:
                current["peak_bytes"] = max(current["peak_bytes"], total)

    def table(self) -> str:
        """A Markdown table: each phase's wall time and peak memory, and the total."""
        lines = ["| phase | wall time (s) | peak memory of the process tree (GB) |", "|---|---:|---:|"]
        for p in self.phases:
            lines.append(f"| {p['phase']} | {p['seconds']:.0f} | {p['peak_bytes'] / 1e9:.2f} |")
        total = sum(p["seconds"] for p in self.phases)
        lines.append(f"| **all** | {total:.0f} | {self.peak_bytes / 1e9:.2f} |")
        return "\n".join(lines)

    def markdown(self, notes: Sequence[str]) -> str:
        """The run's section of the report: notes (command, machine, tasks); the phases' table follows it at the
        end of the report, once the last phase is done."""
        return "\n".join(["## The run", "", *notes, ""])


def run_notes(argv: Sequence[str], recipe: dict[str, Any]) -> list[str]:
    """Markdown lines on what ran where: command, date, machine, code version, the recipe."""
    import json
    import os

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    return [
        f"- command: `jat-generalist {' '.join(argv)}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; code: {commit}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        f"- recipe: `{json.dumps(recipe, separators=(',', ':'))}`",
    ]
