"""The names of the SNMP reply-matching rules (``collectors.snmp_replies``) without pysnmp: drop
reasons and their counter, random request ids, source addresses. The v2c fast path needs only these,
so an agent polling v2c alone never imports pysnmp's engine (about 30 MiB)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Container
from typing import Any

from collectors.api import Family, Sample

DROP_REASONS = ("wrong_source", "wrong_community", "unknown_request", "malformed")
DROPPED_REPLIES = Family(
    "snmp_replies_dropped", "counter",
    "SNMP replies dropped: undecodable (malformed), from another address than the request went to "
    "(wrong_source), with another community or version (wrong_community), or answering no pending "
    "request (unknown_request).", ("reason",))
REQUEST_ID_LIMIT = 2**31 - 1  # request-id and msgID are INTEGER (0..2147483647): ids 1..2^31-1
_ID_DRAWS = 64  # a draw hits a pending id with odds of pending/2^31: 64 misses in a row do not happen

Address = tuple[str, int]
OnDrop = Callable[[str, Address], None]  # (reason, source address)


def dropped_samples(counts: dict[str, int]) -> list[Sample]:
    return [Sample(DROPPED_REPLIES.name, float(counts.get(reason, 0)), (reason,)) for reason in DROP_REASONS]


def fresh_id(taken: Container[int]) -> int:
    """A random id in 1..2^31-1 that no pending request uses."""
    for _ in range(_ID_DRAWS):
        candidate = secrets.randbelow(REQUEST_ID_LIMIT) + 1
        if candidate not in taken:
            return candidate
    raise RuntimeError("no free SNMP request id after 64 random draws")


def source_key(address: Any) -> Address:
    """(host, port) of a transport address: pysnmp's address objects and IPv6 4-tuples alike."""
    return (str(address[0]), int(address[1]))
