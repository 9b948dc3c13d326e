"""One run per output folder: a lock that a second live process writing the same folder is refused by.

    with run_lock("runs/x", prog="jat-train", field="--output-dir"):
        ...  # write into runs/x

The lock is the file ``<folder>/.jat-run.lock`` with a POSIX record lock (``fcntl.lockf``) on it for as long as
the ``with`` block runs; it records who holds it (pid, host, program, start time) for the message a refused
process prints. The kernel (or the NFS lock manager) releases a record lock when its process dies, however it
dies, and forked children (data-loader workers that outlive a killed trainer for a few seconds) do not inherit
it, so a lock file left by a killed process is taken over at once, with a warning naming the dead holder; there
is no stale lock to remove by hand. Record locks do not exclude their own process, and closing any descriptor
of the file releases them: a second hold of one folder in the same process is refused from a table of this
process's holds, and nothing else in the holding process may open the lock file. A clean exit removes it.

On a file system without locks (some network mounts answer ``ENOLCK``) or a platform without ``fcntl``, the
recorded pid decides instead: a holder still running on this host, or one on another host (whose pid cannot be
checked), keeps the folder; a dead one on this host is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from jat_train.files import writing

logger = logging.getLogger(__name__)

#: the lock file, in the folder it guards
LOCK_FILE = ".jat-run.lock"


#: this process's holds, by real folder path: record locks do not exclude their own process
_HELD: dict[str, dict] = {}


class RunLockError(ValueError):
    """Another live process is writing the folder (the message names it, its pid and the folder)."""


@contextlib.contextmanager
def run_lock(
    folder: str | os.PathLike,
    *,
    prog: str,
    field: str = "folder",
    warn: Callable[[str], Any] | None = None,
) -> Iterator[str]:
    """Hold ``folder``'s run lock for the duration of the ``with`` block (the folder is created if missing).

    Args:
        folder: the output folder to own.
        prog: who takes it (``"jat-train"``), recorded for the message another process gets.
        field: the option that named the folder (``"--output-dir"``), for messages.
        warn: called with one message when a lock left by a dead process is taken over (default: this module's
            ``logger.warning``).

    Yields:
        The lock file's path.

    Raises:
        RunLockError: another live process holds the lock (naming its pid, host, program and the folder).
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_FILE)
    key = os.path.realpath(folder)
    if key in _HELD:
        raise RunLockError(f"{field} {folder!r} is in use: {_describe(_HELD[key])} is writing it (this process)")
    fd = _acquire(path, folder, field, warn if warn is not None else logger.warning)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "prog": prog,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with writing(path):  # a full disk: named like any other write
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        _HELD[key] = holder
        yield path
    finally:
        _HELD.pop(key, None)
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it: see _acquire's check of the inode
        os.close(fd)


def _acquire(path: str, folder: str, field: str, warn: Callable[[str], Any]) -> int:
    """Open and lock ``path``; returns its descriptor."""
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = _lock_file(fd)
            holder = _holder(fd, wait=locked is None)
            if locked is None or (locked is False and holder is not None and _maybe_alive(holder)):
                hint = "" if locked is None else f" (if it is gone, remove {path})"
                raise RunLockError(
                    f"{field} {folder!r} is in use: {_describe(holder)} is writing it; wait for it to end, or use "
                    f"another folder{hint}"
                )
            if not _same_file(fd, path):  # its holder removed it on release after we opened it: open it anew
                os.close(fd)
                continue
        except BaseException:
            os.close(fd)
            raise
        if holder is not None:
            warn(f"{field} {folder!r}: taking over the lock {path} left by {_describe(holder)}, which is no longer "
                 "running (killed while writing?)")
        return fd
    raise RunLockError(f"{field} {folder!r}: could not take the lock {path} (other processes keep replacing it)")


def _lock_file(fd: int) -> bool | None:
    """Take a record lock on ``fd`` without waiting: ``True`` taken, ``None`` another process holds it, ``False``
    the file system or platform has no locks (the recorded pid decides)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return False
        raise


def _holder(fd: int, *, wait: bool) -> dict | None:
    """Who the lock file says holds it, or ``None`` when it is empty or unreadable. With ``wait`` (someone holds
    it), an empty file is read again for up to a second: its holder writes its record right after locking."""
    for _ in range(20 if wait else 1):
        try:
            value = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        except (ValueError, UnicodeDecodeError):
            value = None
        if isinstance(value, dict):
            return value
        if wait:
            time.sleep(0.05)
    return None


def _maybe_alive(holder: dict) -> bool:
    """Without file locks: whether the recorded holder may still run (a live pid on this host, or any other host,
    where its pid cannot be checked)."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname():
        return True
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _same_file(fd: int, path: str) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _describe(holder: dict | None) -> str:
    if holder is None:
        return "another process (pid not recorded yet)"
    return (f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('prog', '?')}, started "
            f"{holder.get('started', '?')})")
