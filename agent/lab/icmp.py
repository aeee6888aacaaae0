"""Simulated routers for ``icmp`` targets: loopback addresses that answer echo, and faults on them.

Every address in 127.0.0.0/8 answers ICMP echo on Linux, so a router is simply its loopback
address (``AddressPool.take`` of its configured address, the key the SNMP simulator uses too, so a
router's ICMP and SNMP targets share it). The interesting part is breaking it on demand.

Faults need root and nftables (Debian package ``nftables``): the lab loads one table of its own,
``ip egov_lab_<pid>_<n>``, whose rules match only ICMP to or from addresses the lab put in its sets,
all inside 127.77.0.0/16 (checked here, and each chain first lets every other address through), so
nothing else on the host is touched. The table is deleted on close, and tables left by a lab
process that died are removed when the next lab starts.

* ``down``: echo requests to the address are dropped on input.
* ``lossy``: ``numgen random mod 100 < 30`` drops 30 % of them, independently per packet.
* ``slow``: the kernel's own echo replies from the address are dropped on output; a raw socket
  here answers the requests instead, ``slow_delay`` seconds later, its replies told apart by a
  socket mark.
* ``flapping``: the address goes down and up every ``flap_seconds``.

Why not network namespaces with ``tc netem``: the simulated routers live on loopback (the agent
reaches them without any routing), a 127.x address cannot be moved into another namespace, and
kernels built without netem (this machine's) could not delay or drop with it anyway.

Without root or ``nft`` the routers still answer, but ICMP faults are unavailable: ``set_state``
raises ValueError (the lab's control API answers 400) and routers meant to start down stay up. The
SNMP simulator carries ``down`` for such a router, and link KPIs count a unit up only if all its
targets are (``unit_up: all``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import itertools
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
from typing import Any

from agent.lab.addresses import LAB_NETWORK, AddressPool

log = logging.getLogger(__name__)

STATES = ("up", "down", "lossy", "slow", "flapping")
SETS = {"down": "down", "lossy": "lossy", "slow": "slow"}  # state -> nftables set; flapping uses "flap"
TABLE_PREFIX = "egov_lab_"
REPLY_MARK = 0x6567  # marks the slow responder's own replies, which the output rule lets through
SO_MARK, IP_PKTINFO, SOL_RAW, ICMP_FILTER = 36, 8, 255, 1  # Linux values the socket module does not name
_tables = itertools.count(1)


def faults_unavailable() -> str | None:
    """Why ICMP faults cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "ICMP faults need root (nftables rules on loopback)"
    if shutil.which("nft") is None:
        return "ICMP faults need nft (Debian package nftables)"
    return None


class IcmpSimulator:
    kind = "icmp"

    def __init__(self, pool: AddressPool, lossy_percent: int = 30, slow_delay: float = 0.3,
                 flap_seconds: float = 30.0) -> None:
        self.pool = pool
        self.lossy_percent = lossy_percent
        self.slow_delay = slow_delay
        self.flap_seconds = flap_seconds
        self.addresses: dict[str, str] = {}
        self.state: dict[str, str] = {}
        self.faults: NftFaults | None = None
        self._unavailable: str | None = None
        self._warned = False

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        host = self.pool.take(str(params.get("host", target_id)))
        self.addresses[target_id] = host
        self.state[target_id] = "up"
        if not up:
            try:
                await self.set_state(target_id, "down")
            except ValueError as exc:
                if not self._warned:
                    log.warning("lab: %s; ICMP targets meant to start down stay up", exc)
                    self._warned = True
        return {**params, "host": host}

    async def set_state(self, target_id: str, state: str) -> None:
        address = self.addresses[target_id]  # KeyError: not a simulated target
        if state not in STATES:
            raise ValueError(f"icmp targets can be {', '.join(STATES)}, not {state!r}")
        before = self.state[target_id]
        if state == before:
            return
        faults = await self._faults()
        try:
            await faults.move(address, before, state)
        except (RuntimeError, OSError) as exc:  # nft or the slow responder's socket failed: say so, keep the lab
            raise ValueError(f"cannot make {target_id} {state}: {exc}") from exc
        self.state[target_id] = state

    async def _faults(self) -> NftFaults:
        """The nftables side, started on the first fault; ValueError (the control API's 400) if it cannot be."""
        if self.faults is None:
            reason = self._unavailable or faults_unavailable()
            if reason is None:
                faults = NftFaults(self.lossy_percent, self.slow_delay, self.flap_seconds, self.pool.network)
                try:
                    await faults.start()
                    self.faults = faults
                except (RuntimeError, OSError) as exc:
                    reason = f"ICMP faults are unavailable: nftables refused the lab's table ({exc})"
            if self.faults is None:
                self._unavailable = reason
                raise ValueError(f"{reason}; mark the router's SNMP target down instead")
        return self.faults

    def states(self) -> dict[str, str]:
        return dict(self.state)

    async def close(self) -> None:
        if self.faults is not None:
            await self.faults.close()
            self.faults = None


class NftFaults:
    """The lab's nftables table and the helpers (slow responder, flapping clock) that go with it."""

    def __init__(self, lossy_percent: int, slow_delay: float, flap_seconds: float,
                 network: ipaddress.IPv4Network = LAB_NETWORK) -> None:
        self.table = f"{TABLE_PREFIX}{os.getpid()}_{next(_tables)}"
        self.network = network
        self.lossy_percent = lossy_percent
        self.slow_delay = slow_delay
        self.flap_seconds = flap_seconds
        self.flapping: set[str] = set()
        self.slow: set[str] = set()
        self._flap_down = False
        self._flapper: asyncio.Task | None = None
        self._responder: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ruleset(self) -> str:
        net = self.network
        return f"""
table ip {self.table} {{
  set down {{ type ipv4_addr; }}
  set lossy {{ type ipv4_addr; }}
  set slow {{ type ipv4_addr; }}
  set flap {{ type ipv4_addr; }}
  chain input {{
    type filter hook input priority filter; policy accept;
    ip daddr != {net} accept
    icmp type echo-request ip daddr @down drop
    icmp type echo-request ip daddr @flap drop
    icmp type echo-request ip daddr @lossy numgen random mod 100 < {self.lossy_percent} drop
  }}
  chain output {{
    type filter hook output priority filter; policy accept;
    ip saddr != {net} accept
    icmp type echo-reply ip saddr @slow meta mark != {REPLY_MARK:#x} drop
  }}
}}
"""

    async def start(self) -> None:
        await _remove_stale_tables()
        await _nft(self.ruleset())
        atexit.register(self._delete_table_now)
        self._loop = asyncio.get_running_loop()

    async def move(self, address: str, before: str, after: str) -> None:
        if ipaddress.ip_address(address) not in self.network:
            raise ValueError(f"{address} is outside the lab's {self.network}: refusing to touch it")
        script = []
        if before in SETS:
            script.append(f"delete element ip {self.table} {SETS[before]} {{ {address} }}")
        if after in SETS:
            script.append(f"add element ip {self.table} {SETS[after]} {{ {address} }}")
        if before == "flapping":
            self.flapping.discard(address)
            if self._flap_down:
                script.append(f"delete element ip {self.table} flap {{ {address} }}")
        if after == "flapping":
            self.flapping.add(address)
            if self._flap_down:
                script.append(f"add element ip {self.table} flap {{ {address} }}")
            if self._flapper is None:
                self._flapper = asyncio.create_task(self._flap(), name="lab-icmp-flap")
        if script:
            await _nft("\n".join(script) + "\n")
        if after == "slow":
            self.slow.add(address)
            self._start_responder()
        elif before == "slow":
            self.slow.discard(address)

    async def _flap(self) -> None:
        while True:
            await asyncio.sleep(self.flap_seconds)
            self._flap_down = not self._flap_down
            script = f"flush set ip {self.table} flap\n"
            if self._flap_down and self.flapping:
                script += f"add element ip {self.table} flap {{ {', '.join(sorted(self.flapping))} }}\n"
            try:
                await _nft(script)
            except RuntimeError as exc:
                log.warning("lab: flapping: %s", exc)

    # -- slow: answer echo requests ourselves, late ------------------------------------------
    def _start_responder(self) -> None:
        if self._responder is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        sock.setsockopt(socket.SOL_SOCKET, SO_MARK, REPLY_MARK)
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~(1 << 8) & 0xFFFFFFFF))  # echo requests only
        sock.setblocking(False)
        self._responder = sock
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._on_request)

    def _on_request(self) -> None:
        assert self._responder is not None and self._loop is not None
        for _ in range(256):
            try:
                packet = self._responder.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            header = (packet[0] & 0x0F) * 4
            source, destination = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
            echo = packet[header:]
            if destination in self.slow and len(echo) >= 8 and echo[0] == 8:
                self._loop.call_later(self.slow_delay, self._reply, source, destination, echo)

    def _reply(self, to: str, source: str, echo: bytes) -> None:
        reply = bytearray(echo)
        reply[0:4] = b"\x00\x00\x00\x00"  # type 0 (echo reply), code 0, checksum cleared
        reply[2:4] = struct.pack("!H", _checksum(bytes(reply)))
        # IP_PKTINFO's spec_dst picks the reply's source address: the simulated router's.
        pktinfo = struct.pack("I4s4s", 0, socket.inet_aton(source), bytes(4))
        if self._responder is not None and source in self.slow:
            with contextlib.suppress(OSError):
                self._responder.sendmsg([bytes(reply)], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, (to, 0))

    async def close(self) -> None:
        if self._flapper is not None:
            self._flapper.cancel()
            await asyncio.gather(self._flapper, return_exceptions=True)
        if self._responder is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._responder.fileno())
            self._responder.close()
            self._responder = None
        try:
            await _nft(f"delete table ip {self.table}\n")
        finally:
            atexit.unregister(self._delete_table_now)

    def _delete_table_now(self) -> None:
        """Last resort at interpreter exit when close() was never reached."""
        subprocess.run(["nft", "delete", "table", "ip", self.table], capture_output=True, check=False)


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) over an ICMP message."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


async def _nft(script: str) -> None:
    process = await asyncio.create_subprocess_exec("nft", "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate(script.encode())
    if process.returncode != 0:
        raise RuntimeError(f"nft failed ({process.returncode}): {err.decode(errors='replace').strip()}")


async def _remove_stale_tables() -> None:
    """Delete ``egov_lab_<pid>_<n>`` tables whose lab process is gone (killed before its close())."""
    process = await asyncio.create_subprocess_exec("nft", "-j", "list", "tables", "ip",
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    try:
        entries = json.loads(out or b"{}").get("nftables", [])
    except ValueError:
        return
    for entry in entries:
        name = entry.get("table", {}).get("name", "")
        pid = name.removeprefix(TABLE_PREFIX).split("_")[0]
        if not name.startswith(TABLE_PREFIX) or not pid.isdigit() or _alive(int(pid)):
            continue
        log.info("lab: removing the nftables table %s left by a lab that died", name)
        with contextlib.suppress(RuntimeError):
            await _nft(f"delete table ip {name}\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
