"""TCP port checks for the systems hosted at the data integration centre (THDL).

A system counts as up when a TCP connection to its service port is accepted within the timeout:
the cheapest check that tells an application server from a dead one without speaking its protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time

from collectors.api import Collector, Family, NoSettings, ProbeResult, Sample
from collectors.tcp.models import TcpParams


def _reason_for(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return "connect_error"


class TcpCollector(Collector[TcpParams, NoSettings]):
    kind = "tcp"
    Params = TcpParams
    families = (Family("tcp_connect_seconds", "gauge", "Time to establish the TCP connection."),)

    async def probe(self, target_id: str, params: TcpParams, timeout: float) -> ProbeResult:
        started = time.perf_counter()
        try:  # a port that never answers is cut at the timeout by the probe runner
            _reader, writer = await asyncio.open_connection(str(params.host), params.port)
        except OSError as exc:
            return ProbeResult(False, _reason_for(exc), detail=str(exc))
        elapsed = time.perf_counter() - started
        writer.close()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        return ProbeResult(True, samples=[Sample("tcp_connect_seconds", elapsed)])
