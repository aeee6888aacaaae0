"""Simulated routers for ``icmp`` targets: loopback addresses that answer echo, and faults on them.

Every address in 127.0.0.0/8 answers ICMP echo on Linux, so a router is simply its loopback
address (``AddressPool.take`` of its configured address, the key the SNMP simulator uses too, so a
router's ICMP and SNMP targets share it). The interesting part is breaking it on demand.

Faults need root and nftables (Debian package ``nftables``): the lab loads one table of its own,
``ip egov_lab_<pid>_<n>``, whose rules match only ICMP to or from addresses the lab put in its sets,
all inside 127.77.0.0/16 (checked here, and each chain first lets every other address through), so
nothing else on the host is touched. The table is deleted on close (first, whatever its helpers
do), at interpreter exit if close was never reached, and tables of that naming left by a lab process
that is no longer running (SIGKILL cannot be caught) are removed when the next lab starts
(``remove_stale_tables``). No other table is ever touched: not one of another name or family, nor
one whose process still runs.

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
import logging
import os
import re
import shutil
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

from collectors.lab_addresses import LAB_NETWORK, AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase

log = logging.getLogger(__name__)

STATES = ("up", "down", "lossy", "slow", "flapping")
SETS = {"down": "down", "lossy": "lossy", "slow": "slow"}  # state -> nftables set; flapping uses "flap"
TABLE_PREFIX = "egov_lab_"
TABLE_NAME = re.compile(rf"{TABLE_PREFIX}(\d+)_(\d+)")  # the whole name: egov_lab_<pid>_<n>
NFT_TIMEOUT = 10.0  # seconds for one nft command; it takes milliseconds
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


class IcmpSimulator(SimulatorBase):
    kind = "icmp"
    close_first = True  # its nftables table must not outlive the lab

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None,
                 lossy_percent: int = 30, slow_delay: float = 0.3, flap_seconds: float = 30.0) -> None:
        super().__init__(pool, seed, peers)
        self.lossy_percent = lossy_percent
        self.slow_delay = slow_delay
        self.flap_seconds = flap_seconds
        self.addresses: dict[str, str] = {}
        self.state: dict[str, str] = {}
        self.faults: NftFaults | None = None
        self._unavailable: str | None = None
        self._warned = False

    async def start(self) -> None:
        """Tables left by labs that were killed (SIGKILL, a crash of the interpreter) go first, one log line
        naming them: only our naming and pids no longer running; without root or nft, nothing."""
        await asyncio.to_thread(remove_stale_tables)

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
        await asyncio.to_thread(remove_stale_tables)  # a no-op after the lab's own sweep at its start
        self._loop = asyncio.get_running_loop()
        atexit.register(self._delete_table_now)  # before the table exists: nothing may come between
        try:
            await _nft(self.ruleset())
        except BaseException:  # refused, or cancelled while nft ran: make sure no table is left
            self._delete_table_now()
            atexit.unregister(self._delete_table_now)
            raise

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
        """Stop the helpers, then delete the table whatever stopping them did. Should the deletion fail,
        the interpreter-exit handler stays registered and tries again."""
        try:
            if self._flapper is not None:
                self._flapper.cancel()
                await asyncio.gather(self._flapper, return_exceptions=True)
                self._flapper = None
            if self._responder is not None:
                responder, self._responder = self._responder, None
                try:
                    if self._loop is not None and not self._loop.is_closed():
                        self._loop.remove_reader(responder.fileno())
                finally:
                    responder.close()
        finally:
            await _nft(f"delete table ip {self.table}\n")
            atexit.unregister(self._delete_table_now)

    def _delete_table_now(self) -> None:
        """Last resort at interpreter exit when close() was never reached."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["nft", "delete", "table", "ip", self.table], capture_output=True, check=False,
                           timeout=NFT_TIMEOUT)


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
    try:
        _, err = await asyncio.wait_for(process.communicate(script.encode()), NFT_TIMEOUT)
    except BaseException:  # a timeout, or the lab stopping: leave no nft behind
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"nft failed ({process.returncode}): {err.decode(errors='replace').strip()}")


def lab_tables() -> list[tuple[str, int]]:
    """The ``ip`` tables named like the lab's, ``egov_lab_<pid>_<n>``, with their pid; [] without nft."""
    try:
        listed = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, text=True, check=False,
                                timeout=NFT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return []
    out = []
    for line in listed.stdout.splitlines():  # "table ip NAME"
        words = line.split()
        if len(words) == 3 and words[:2] == ["table", "ip"]:
            match = TABLE_NAME.fullmatch(words[2])
            if match:
                out.append((words[2], int(match.group(1))))
    return out


def remove_stale_tables(pid: int | None = None) -> list[str]:
    """Delete the lab's tables whose process is no longer running (killed before its close(), SIGKILL
    above all); with ``pid``, only that process's. Logs one line naming what it removed; returns the names.
    Tables of any other name or family, or of a process that runs (this one included), stay."""
    if faults_unavailable() is not None:
        return []
    removed = []
    for name, owner in lab_tables():
        if (pid is not None and owner != pid) or owner == os.getpid() or _alive(owner):
            continue
        try:
            deleted = subprocess.run(["nft", "delete", "table", "ip", name], capture_output=True, text=True,
                                     check=False, timeout=NFT_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("lab: cannot remove the nftables table %s left by lab process %d: %s", name, owner, exc)
            continue
        if deleted.returncode == 0:
            removed.append(name)
        elif name in {n for n, _ in lab_tables()}:  # not merely removed by another lab meanwhile
            log.warning("lab: cannot remove the nftables table %s left by lab process %d: %s",
                        name, owner, deleted.stderr.strip())
    if removed:
        log.info("lab: removed %d nftables table(s) left by lab processes no longer running: %s",
                 len(removed), ", ".join(removed))
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs: a thread's id or a zombie (dead, not yet reaped) does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc to ask: kill() said it exists
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return fields.get("Tgid", "").strip() == str(pid) and not fields.get("State", "").strip().startswith(("Z", "X"))
