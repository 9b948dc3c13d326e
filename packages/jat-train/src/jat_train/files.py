"""Writing output files so that a failure (a full disk, a kill) leaves every file as it was.

:func:`write_files` writes each file to a temporary name beside it (same suffix, so that writers that pick a
format from the name still do), flushes it to disk, and renames them all only once every one is written: a
failure leaves the old files and no temporary one. :func:`writing` turns what any writer raises (``OSError``,
``RuntimeError`` from torch's writer, ``SafetensorError``...) into one ``OSError`` naming the path and the cause;
:func:`write_error` builds that error; :func:`append_line` appends a whole line to a log, or nothing.
Directories written as a whole (checkpoints, data sets) are written beside their final name and renamed by their
own modules (:mod:`jat_train.training.checkpoint`, :mod:`jat_train.collection.store`).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

#: prefix of the temporary files :func:`write_files` writes (hidden; removed when a write fails)
TMP_PREFIX = ".tmp-"


class WriteError(OSError):
    """A file could not be written; the message names it and the cause (see :func:`write_error`)."""


def write_error(path: str | os.PathLike, exc: BaseException, note: str = "") -> WriteError:
    """An ``OSError`` whose message names ``path`` and what went wrong (one line), plus ``note``.

    Its ``errno`` is the cause's where it has one (``ENOSPC`` when the disk is full, also when a native writer
    only says so in words).
    """
    if isinstance(exc, OSError) and exc.strerror:
        cause = exc.strerror
    else:
        cause = f"{type(exc).__name__}: {exc}"
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and ("No space left on device" in cause or "os error 28" in cause):
        code = errno.ENOSPC
    error = WriteError(f"cannot write {os.fspath(path)!r}: {cause}{'; ' + note if note else ''}")
    error.errno = code
    return error


@contextlib.contextmanager
def writing(path: str | os.PathLike, note: str = "") -> Iterator[None]:
    """Raise any failure of the ``with`` block as :func:`write_error` ``(path, exc, note)`` (a :class:`WriteError`
    from within, which names its own file, as it is)."""
    try:
        yield
    except WriteError:
        raise
    except Exception as exc:
        raise write_error(path, exc, note) from exc


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data to the disk (a full disk or quota can show only here, on some file systems)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: str | os.PathLike) -> str:
    """The temporary name :func:`write_files` writes ``path`` under: beside it, hidden, same suffix."""
    head, name = os.path.split(os.fspath(path))
    return os.path.join(head, f"{TMP_PREFIX}{os.getpid()}-{name}")


def write_files(writes: Mapping[str | os.PathLike, Callable[[str], Any]], note: str = "") -> list[str]:
    """Write several files all or nothing: ``write(tmp)`` for each, then rename every temporary file in place.

    Args:
        writes: final path -> a function that writes the file's content to the path it is given.
        note: appended to the error message (what the failure left, how to go on).

    Returns:
        The final paths, in the order given.

    Raises:
        OSError: a write failed (disk full, permission...): its message names the file and the cause; no
            temporary file is left and every file that existed is as it was.
    """
    done: list[tuple[str, str]] = []
    try:
        for path, write in writes.items():
            path = os.fspath(path)
            tmp = temp_path(path)
            done.append((tmp, path))
            with writing(path, note):
                write(tmp)
                fsync_file(tmp)
    except BaseException:
        for tmp, _ in done:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        raise
    for tmp, path in done:
        os.replace(tmp, path)
    return [path for _, path in done]


def append_line(path: str | os.PathLike, line: str, note: str = "") -> None:
    """Append ``line`` (and a newline) to a log file whole or not at all: a failed write (disk full) is cut
    back off, so that readers never meet half a line.

    Raises:
        OSError: :func:`write_error` naming the file and the cause.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        data = memoryview((line.rstrip("\n") + "\n").encode())
        try:
            while data:  # a short write (the disk filling up) is followed by ENOSPC on the next one
                data = data[os.write(fd, data) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise write_error(path, exc, note) from exc
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any], note: str = "") -> str:
    """:func:`write_files` for one file; returns its path."""
    return write_files({path: write}, note)[0]
