"""The C allocator's behaviour for the long-running commands: a fixed mmap threshold.

glibc serves an allocation of at least its *mmap threshold* with its own ``mmap``, given back
to the system on ``free``; smaller ones come from the heap, whose freed memory mostly stays
with the process. The threshold slides: each freed ``mmap`` chunk raises it to that chunk's size
(up to 32 MiB). After the first image buffer is freed, every later one of that size comes from
the heap, and a daemon that had 16 large jobs in flight keeps their memory: peak RSS 388-404 MB
in `make bench` (benchmark 5) against 181 MB with the threshold fixed at 1 MiB, when Pillow's
image blocks and the upload buffers are given back as soon as they are freed. Fixing it costs
a page fault per 4 KiB of each large buffer, a few milliseconds against the decode of a photo.

``run`` and ``worker`` fix it; ``process``, which gives everything back when it ends, keeps the
sliding threshold, whose reuse of heap buffers saves page faults (24 camera photos: 215-243
thousand minor faults against 370 thousand, 0.7-0.9 s of system time against 1.1-1.25 s).
``MALLOC_MMAP_THRESHOLD_`` in the environment (glibc's own variable) wins: the user chose.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: ``M_MMAP_THRESHOLD`` in glibc's ``<malloc.h>``.
_M_MMAP_THRESHOLD = -3
#: Allocations this large or larger are given back to the system when freed.
MMAP_THRESHOLD_BYTES = 1024 * 1024


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process; False when it is
    not glibc, or ``MALLOC_MMAP_THRESHOLD_`` already says what it is."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):  # not a GNU C library
        return False
    if not glibc.startswith("glibc"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
