"""Large CPU tensors without a page fault per step: keep freed memory in the process (glibc's ``malloc``).

glibc serves every allocation above its mmap threshold (at most 32 MiB, adjusted as the program runs) with its own
``mmap`` and unmaps it again on ``free``. A training step allocates some tensors of that size afresh every time (at
jat-small: the 50257 x 768 token table's dense gradient, its bf16 copy under autocast, the image codec's
15488-wide layer), so every step faults all their pages in again, which costs several times the work itself
(docs/benchmarks.md, "Training in bf16"). :func:`keep_freed_memory` raises the mmap and
trim thresholds so that blocks up to ``limit`` bytes come from (and return to) the process's heap, which is what a
``LD_PRELOAD`` of jemalloc or tcmalloc, the usual advice for PyTorch on CPUs, also buys. The price: memory freed
by a step stays with the process for the next one instead of going back to the system.

``jat-train`` (on CPU) and ``jat-eval`` call it; a program of your own can too::

    from jat_core.memory import keep_freed_memory
    keep_freed_memory()
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

#: ``mallopt`` parameters (``<malloc.h>``)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: default ``limit``: blocks up to 1 GiB are kept
DEFAULT_LIMIT = 1 << 30


def _glibc():
    """The process's C library when it is glibc (it has ``mallopt`` and ``gnu_get_libc_version``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):
        return None  # musl and others: their malloc has no such thresholds
    return libc


def keep_freed_memory(limit: int = DEFAULT_LIMIT) -> bool:
    """Keep freed blocks of up to ``limit`` bytes in the process instead of unmapping them (glibc only).

    Args:
        limit: the largest block served from the heap, in bytes (between 1 MiB and 2 GiB).

    Returns:
        True when glibc took both settings; False elsewhere (another C library or platform, or a glibc that
        refuses the value), where nothing changes.

    Raises:
        ValueError: ``limit`` out of range.
    """
    if not (1 << 20) <= limit < (1 << 31):
        raise ValueError(f"keep_freed_memory: expected limit between 1 MiB and 2 GiB (bytes), got {limit}")
    libc = _glibc()
    if libc is None:
        return False
    # trim only above twice the limit: a freed block at the top of the heap stays for the next step
    kept = bool(libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(limit)))
    kept = kept and bool(libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(min(2 * limit, (1 << 31) - 1))))
    if not kept:
        logger.debug("glibc refused mallopt(M_MMAP_THRESHOLD=%d)", limit)
    return kept
