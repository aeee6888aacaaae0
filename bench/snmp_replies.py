#!/usr/bin/env python3
"""What checking each SNMP reply's source, community and random id costs on the receive path.

Sends N real GET requests (8 varbinds, like a steady-state probe) through the v2c dispatcher to a
silent UDP port on 127.41.4.1, then hands the dispatcher N matching replies (and N undecodable ones)
as its socket would, timing CPU per datagram. Compared: pysnmp's own SnmpDispatcher (request id
only, counter ids) and collectors.snmp_replies.MatchingDispatcher. The decode dominates both.

Usage: .venv/bin/python bench/snmp_replies.py [--replies 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyasn1.codec.ber import decoder, encoder
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.hlapi.v1arch import asyncio as v1arch
from pysnmp.proto import api, rfc1902

from collectors.snmp.probe import COLUMNS, SYS_UPTIME
from collectors.snmp.replies import MatchingDispatcher, TransportDispatcher

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
HOST = "127.41.4.1"


def reply_to(request: bytes) -> bytes:
    message, _ = decoder.decode(request, asn1Spec=V2C.Message())
    response = V2C.apiMessage.get_response(message)
    names = [name for name, _ in V2C.apiPDU.get_varbinds(V2C.apiMessage.get_pdu(message))]
    values = [rfc1902.TimeTicks(123456), rfc1902.Integer32(1), rfc1902.Integer32(1), rfc1902.Counter64(2**40),
              rfc1902.Counter64(2**39), rfc1902.Gauge32(1000), rfc1902.Counter32(7), rfc1902.Counter32(3)]
    V2C.apiPDU.set_varbinds(V2C.apiMessage.get_pdu(response), list(zip(names, values, strict=True)))
    return encoder.encode(response)


async def measure(kind: str, replies: int) -> tuple[float, float]:
    """(µs of CPU per matched reply, µs per undecodable datagram)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((HOST, 0))
    silent.settimeout(5.0)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((HOST, 0))
    transports = TransportDispatcher()
    transports.register_transport(udp.DOMAIN_NAME, udp.UdpAsyncioTransport().open_server_mode(sock=sink))
    dispatcher: Any = (MatchingDispatcher(transports, lambda reason, source: None) if kind == "matching"
                       else v1arch.SnmpDispatcher(transports))
    target = await v1arch.UdpTransportTarget.create((HOST, silent.getsockname()[1]), timeout=60, retries=0)
    auth = v1arch.CommunityData("bench-community", mpModel=1)
    oids = [SYS_UPTIME, *[(*column, 1) for column, _ in COLUMNS.values()]]
    datagrams = []
    for _ in range(replies):
        pdu = V2C.GetRequestPDU()
        V2C.apiPDU.set_defaults(pdu)
        V2C.apiPDU.set_varbinds(pdu, [(oid, rfc1902.Null()) for oid in oids])
        dispatcher.send_pdu(auth, target, pdu, cbFun=lambda *args: None)
        await asyncio.sleep(0)  # the transport may send on the next turn of the loop
        datagrams.append(reply_to(silent.recv(65535)))
    address = target.transport_address
    started = time.process_time()
    for datagram in datagrams:
        dispatcher._recv_callback(None, udp.DOMAIN_NAME, address, datagram)
    matched = (time.process_time() - started) / replies * 1e6
    rng = random.Random(14)
    garbage = [d[: rng.randrange(1, len(d))] for d in datagrams]
    started = time.process_time()
    for datagram in garbage:
        with contextlib.suppress(Exception):  # pysnmp's own dispatcher raises for some: timed all the same
            dispatcher._recv_callback(None, udp.DOMAIN_NAME, address, datagram)
    broken = (time.process_time() - started) / replies * 1e6
    dispatcher.close()
    transports.close_dispatcher()
    silent.close()
    return matched, broken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=5000)
    args = parser.parse_args()
    with open("/proc/loadavg", encoding="ascii") as load:
        print(f"load average: {load.read().split()[0]}")
    for kind in ("pysnmp", "matching", "pysnmp", "matching"):  # twice each: the first run warms caches
        matched, broken = asyncio.run(measure(kind, args.replies))
        print(f"{kind:9s} {args.replies} replies: {matched:7.1f} µs CPU per matched reply, "
              f"{broken:7.1f} µs per undecodable datagram")


if __name__ == "__main__":
    main()
