"""A training run's log: ``OUT/log.jsonl`` (one JSON object per logged step), TensorBoard and a progress bar.

:class:`RunLog` writes them on the main process (a resumed run first drops the records a killed run wrote after
its last checkpoint); :func:`read_log` reads the records back, for ``jat-report`` and for anyone holding a run's
directory. Periodic evaluations append to ``OUT/eval.jsonl`` (``EVAL_FILE``).
"""

from __future__ import annotations

import json
import os

from jat_train.files import append_line, atomic_write

LOG_FILE = "log.jsonl"
EVAL_FILE = "eval.jsonl"
#: what a failed log write leaves (in its error)
NOTE = "the log holds every step before it (a resumed run continues it)"


class RunLog:
    """``OUT/log.jsonl`` (one JSON object per logged step), TensorBoard events and a tqdm bar (main process)."""

    def __init__(self, output_dir: str, *, start: int, total: int, enabled: bool, progress: bool):
        self.enabled = enabled
        self.path = os.path.join(output_dir, LOG_FILE)
        self.writer = self.bar = None
        if not enabled:
            return
        _truncate_log(self.path, start)
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        self.writer = SummaryWriter(os.path.join(output_dir, "tensorboard"), purge_step=start + 1)
        self.bar = tqdm(total=total, initial=start, disable=not progress, desc="jat-train", dynamic_ncols=True)

    def step(self, record: dict, write: bool) -> None:
        """Advance the bar; with ``write``, append ``record`` to the log and TensorBoard."""
        if not self.enabled:
            return
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", task=record["task"], refresh=False)
        if write:
            append_line(self.path, json.dumps(record), NOTE)
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"train/{key}", value, record["step"])

    def scalar(self, name: str, value: float, step: int) -> None:
        """One TensorBoard scalar (main process)."""
        if self.enabled:
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        """Flush and close."""
        if self.enabled:
            self.bar.close()
            self.writer.close()


def _truncate_log(path: str, last_step: int) -> None:
    """Drop records after ``last_step`` (steps a killed run logged after its last checkpoint)."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    keep = [line for line in lines if json.loads(line).get("step", 0) <= last_step]
    if len(keep) != len(lines):

        def write(tmp: str) -> None:
            with open(tmp, "w") as f:
                f.writelines(keep)

        atomic_write(path, write)


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a training log, in order.

    Args:
        path: the ``log.jsonl`` file, or a run's output directory (its ``OUT/log.jsonl`` is read).

    Raises:
        UserError: the file is missing or holds no record, a line is not a JSON object, or a record has no
            numeric ``step`` / ``loss`` (naming the file and the line).
    """
    from jat_core.cli import UserError

    if os.path.isdir(path):
        path = os.path.join(path, LOG_FILE)
    if not os.path.isfile(path):
        raise UserError(f"--run: no training log {str(path)!r} (jat-train writes OUT/log.jsonl)")
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise UserError(f"{str(path)!r} line {lineno}: not valid JSON ({exc})") from exc
            if not isinstance(record, dict) or not all(
                isinstance(record.get(k), (int, float)) and not isinstance(record.get(k), bool) for k in ("step", "loss")
            ):
                raise UserError(f"{str(path)!r} line {lineno}: expected a JSON object with a numeric 'step' and 'loss'")
            records.append(record)
    if not records:
        raise UserError(f"{str(path)!r}: the training log holds no record")
    return records
