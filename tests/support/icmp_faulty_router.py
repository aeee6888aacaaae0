"""A misbehaving WAN router for the ICMP fault tests: run inside a test's network namespace.

``ip netns exec NS python3 icmp_faulty_router.py MODE ROUTER WRONG`` answers every echo request the
namespace gets (its kernel's own echo replies switched off by the test) the way MODE says, with IP
headers of its own making so the source address can be any. It prints ``ready`` once listening and
runs until killed or for at most 10 minutes. Modes:

``duplicate``  every reply three times         ``reorder``     replies to a burst, last first
``wrong_source`` replies from WRONG, not ROUTER ``half_wrong``  every other reply from WRONG
``flood``      1,000 replies to nobody's echoes, then the right one
``unreachable`` host unreachable from ROUTER, quoting the request
``ttl``        time exceeded from ROUTER        ``bad_checksum`` the right reply with a broken checksum
``ip_options`` the right reply, its IP header carrying options (24 bytes, not 20)
``truncated``  ICMP packets cut to 1..7 bytes, and errors quoting 0..7 bytes, then the right reply
"""

from __future__ import annotations

import random
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp(kind: int, code: int, rest: bytes, broken: bool = False) -> bytes:
    packet = struct.pack("!BBH", kind, code, 0) + rest
    value = checksum(packet) ^ (0x5A5A if broken else 0)
    return packet[:2] + struct.pack("!H", value) + packet[4:]


def ip_packet(source: str, destination: str, payload: bytes, options: bytes = b"") -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45 + len(options) // 4, 0, 20 + len(options) + len(payload),
                         random.randrange(0x10000), 0, 64, socket.IPPROTO_ICMP, 0, socket.inet_aton(source),
                         socket.inet_aton(destination))
    return header + options + payload


def main() -> None:
    mode, router, wrong = sys.argv[1], sys.argv[2], sys.argv[3]
    listen = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    listen.settimeout(0.2)
    burst: list[tuple[str, bytes]] = []
    print("ready", flush=True)
    end = time.monotonic() + 600
    while time.monotonic() < end:
        try:
            packet, (peer, _) = listen.recvfrom(65535)
        except TimeoutError:
            if burst:  # reorder: a quiet 0.2 s ends the burst; answer it backwards
                for requester, echo in reversed(burst):
                    send.sendto(ip_packet(router, requester, icmp(0, 0, echo[4:])), (requester, 0))
                burst.clear()
            continue
        ihl = (packet[0] & 0x0F) * 4
        echo = packet[ihl:]
        if len(echo) < 8 or echo[0] != 8:  # only echo requests
            continue
        reply = icmp(0, 0, echo[4:])

        def out(source: str, data: bytes, to: str = peer, options: bytes = b"") -> None:
            send.sendto(ip_packet(source, to, data, options), (to, 0))

        if mode == "duplicate":
            for _ in range(3):
                out(router, reply)
        elif mode == "reorder":
            burst.append((peer, echo))
        elif mode == "wrong_source":
            out(wrong, reply)
        elif mode == "half_wrong":
            sequence = struct.unpack("!H", echo[6:8])[0]
            out(wrong if sequence % 2 else router, reply)
        elif mode == "flood":
            ident = struct.unpack("!H", echo[4:6])[0]
            for _ in range(1000):
                other = (ident + random.randrange(1, 0xFFFF)) & 0xFFFF
                out(router, icmp(0, 0, struct.pack("!HH", other, random.randrange(0x10000)) + echo[8:]))
            out(router, reply)
        elif mode == "unreachable":
            out(router, icmp(3, 1, bytes(4) + packet[:ihl + 8]))
        elif mode == "ttl":
            out(router, icmp(11, 0, bytes(4) + packet[:ihl + 8]))
        elif mode == "ip_options":
            out(router, reply, options=b"\x01\x01\x01\x00")  # NOP, NOP, NOP, end of options: a 24-byte header
        elif mode == "bad_checksum":
            out(router, icmp(0, 0, echo[4:], broken=True))
        elif mode == "truncated":
            for size in range(1, 8):
                out(router, reply[:size])
            for size in range(8):
                out(router, icmp(3, 1, bytes(4) + packet[:ihl][:size] if size < ihl else b""))
                out(router, icmp(3, 1, bytes(4) + packet[:ihl] + echo[:size]))
            out(router, reply)
        else:
            raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
