"""glibc's allocator tuned for a long-running agent with a couple of dozen threads.

By default glibc gives each thread that allocates concurrently an arena of its own (up to 8 per
core), and each arena keeps the pages it once used: the HTTP workers, the source threads and the
probe threads each end up holding a few MiB the others cannot reuse. Two arenas (the main one and
one for every other thread) measured 6-11 MiB less RSS after the demo's warm-up at no measurable
CPU cost (docs/benchmarks.md, "Start and memory"). ``MALLOC_ARENA_MAX`` in the environment still
wins, so an operator can undo it. On a libc without ``mallopt`` (musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # malloc.h
ARENAS = 2


def tune() -> None:
    """Call before the first threads start: arenas already created stay."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    if not mallopt(M_ARENA_MAX, ARENAS):
        log.debug("mallopt(M_ARENA_MAX) refused; glibc's default arenas stay")
