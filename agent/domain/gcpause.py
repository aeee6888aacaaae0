"""The cyclic garbage collector around the agent's bulk work: loading tens of thousands of targets.

CPython runs a full collection whenever the objects that survived since the last one reach a quarter
of all long-lived objects, so building a configuration of 40,000 targets (some 450,000 objects, all
of them kept) runs full collections over an ever larger heap, each finding nothing: measured at
bench/wan_scale.py's 39,824 targets, 7.8 s of CPU to load the configuration with the collector,
3.3 s without it, and in a collector worker full collections of 0.25-2 s stalled the loop that reads
the answers (the "loop was 1.5 s behind" overruns). Objects that live as long as the process are
moved out of the collector's sight once built (``gc.freeze``): reference counting still frees them
when they are dropped (a reload), only a reference cycle among them would stay.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside (what is built there is kept); reference counting frees as ever."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def keep_alive_objects() -> None:
    """Leave every object alive now out of later collections: they live as long as the process
    (a configuration, the targets' state after their first probe), so scanning them again and again
    finds nothing and stalls the loop for a time that grows with the targets."""
    gc.freeze()
