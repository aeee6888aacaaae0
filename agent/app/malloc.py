"""glibc's allocator tuned for a long-running agent with a couple of dozen threads.

By default glibc gives each thread that allocates concurrently an arena of its own (up to 8 per
core), and each arena keeps the pages it once used: the HTTP workers, the source threads and the
probe threads each end up holding a few MiB the others cannot reuse. Two arenas (the main one and
one for every other thread) measured ~12 MiB less RSS after the demo's warm-up.

glibc also raises its mmap threshold to the size of any mmapped block freed (up to 32 MiB), so after
the first few renderings of /metrics (MiB-sized texts and lists) every later one comes from the heap
and leaves it fragmented. A fixed 256 KiB threshold keeps such blocks mmapped, given back to the
system when freed: ~6 MiB less again (docs/benchmarks.md, "Start and memory").

``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_`` in the environment still win, so an operator can
undo either. On a libc without ``mallopt`` (musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # malloc.h
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 256 << 10


def tune() -> None:
    """Call before the first threads start: arenas already created stay."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    for variable, option, value in (("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENAS),
                                    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD)):
        if variable not in os.environ and not mallopt(option, value):
            log.debug("mallopt(%s) refused; glibc's default stays", variable)
