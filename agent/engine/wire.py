"""Frames between the agent's main process and its collector workers (agent/pool.py, agent/worker.py).

One frame is a 4-byte big-endian length and a pickled list of messages: the two ends are the same
program on the same host, started by each other, so pickle is neither a trust boundary nor a
compatibility one, and it is the cheapest codec Python has for tuples of str, float and bool. A
worker batches the messages of one loop iteration into one frame, so at 40,000 targets a minute the
pipe carries a few hundred small writes a second. A frame cut short by a killed worker is dropped
whole: the reader sees the end of the stream before its last byte.

Messages, worker to main (tuples, first item the kind):
  ("r", target_id, finished_at, duration, up, reason, samples, detail)  one probe's result
  ("d", target_id)             the target had its turn in the worker's first round
  ("s", collector, missed)     scheduled probes skipped
  ("o", collector)             a probe overrun (the worker's loop was late)
  ("f", collector, samples)    the collector's own counters, as they are now
  ("l", lag_seconds, overloaded)  the worker's loop status, once a second
Main to worker: ("config", loaded_config, target_ids, share_of), first and after every reload.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 30  # a configuration of 40,000 targets pickles to ~17 MB


def frame(messages: Any) -> bytes:
    body = pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> Any | None:
    """The next frame's messages, or None at the end of the stream (a torn last frame included)."""
    try:
        (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes")
        body = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return None
    return pickle.loads(body)
