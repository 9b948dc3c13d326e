"""``torch.save`` files of a checkpoint: written so that a failed write names its cause, read without running code.

- :func:`save_torch` writes with ``torch.save`` through a sink that keeps the ``OSError`` of a failed write
  (a full disk): torch's own writer reports any failed write as "unexpected pos ..." or "file write failed",
  without the cause; the error raised names the file and the cause (:func:`jat_train.files.write_error`).
- :func:`load_torch_file` reads with ``torch.load(weights_only=True)``: tensors and plain Python values only,
  plus the numpy arrays of the RNG states (:data:`SAFE_GLOBALS`, the one addition to its allowlist).
- :func:`unsafe_pickle` scans a file's pickle without running it and says what in it ``weights_only`` loading
  would refuse (any other function or class: what a hostile pickle calls to run code).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from jat_train.files import write_error, writing


def _numpy_globals() -> list:
    """What a pickled numpy array of the numpy RNG state (``uint32``) needs beyond ``weights_only``'s allowlist:
    numpy's array rebuilder, ``ndarray``, ``dtype`` and the ``uint32`` dtype class."""
    rebuild = np.zeros(1, dtype=np.uint32).__reduce__()[0]  # numpy.core or numpy._core, by numpy version
    dtypes = getattr(np, "dtypes", None)
    return [rebuild, np.ndarray, np.dtype, *([dtypes.UInt32DType] if dtypes is not None else [])]


#: the functions and classes a checkpoint's ``.pt`` files may call besides ``weights_only``'s own allowlist
SAFE_GLOBALS = _numpy_globals()


def unsafe_pickle(file: str) -> str | None:
    """Why the ``torch.save`` file ``file`` is refused (its pickle would call a function or build a class that
    ``weights_only`` loading does not allow, i.e. could run code), or ``None``. Scans the pickle, runs nothing."""
    from torch.serialization import get_unsafe_globals_in_checkpoint, safe_globals

    try:
        with safe_globals(SAFE_GLOBALS):
            unsafe = get_unsafe_globals_in_checkpoint(file)
    except Exception as exc:  # a pickle stream cut short, an unknown opcode
        return f"{file}: damaged ({type(exc).__name__}: {exc})"
    if unsafe:
        return (
            f"{file}: refused: its pickle calls {', '.join(sorted(unsafe))}, which could run code on loading "
            "(a checkpoint holds only tensors and plain values)"
        )
    return None


def load_torch_file(file: str) -> Any:
    """``torch.load(file, weights_only=True)`` with the numpy arrays of RNG states allowed (:data:`SAFE_GLOBALS`):
    rebuilds tensors and plain Python values, runs no code from the file.

    Raises:
        pickle.UnpicklingError: the file asks for anything else (the message says what).
    """
    from torch.serialization import safe_globals

    with safe_globals(SAFE_GLOBALS):
        return torch.load(file, weights_only=True)


class _Sink:
    """A write-only file for ``torch.save`` that writes every byte it is given (or raises) and keeps the error."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.error: OSError | None = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        try:
            while view:  # a short write (the disk filling up) is followed by the error on the next one
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            self.error = exc
            raise
        return size

    def flush(self) -> None:
        pass


def save_torch(value: Any, path: str, note: str = "") -> None:
    """``torch.save(value, path)``, flushed to the disk.

    Raises:
        OSError: the file could not be written: naming it and the cause (``No space left on device``...), with
            ``note`` appended.
    """
    with writing(path, note):
        sink = _Sink(path)
        try:
            torch.save(value, sink)
            os.fsync(sink.fd)
        except Exception as exc:
            if sink.error is not None:  # torch says "unexpected pos": the cause is the write's own error
                raise write_error(path, sink.error, note) from exc
            raise
        finally:
            os.close(sink.fd)
