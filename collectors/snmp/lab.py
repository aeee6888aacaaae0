"""Simulated routers for ``snmp`` targets: one SNMPv2c agent per router, on the router's loopback address.

Every department, district and commune router of the lab province answers GET, GETNEXT and GETBULK
for SNMPv2-MIB (system group, generated per unit) and IF-MIB (ifTable and ifXTable for four
interfaces: the WAN uplink ``GigabitEthernet0/0/0``, a LAN port, an unused admin-down port and
``Loopback0``). Octet counters follow a smooth traffic curve, so they grow like real traffic and
never go backwards; the uptime starts at a random age of days.

Why not snmpsim or net-snmp (measured here, bench/snmp_lab.py and the same collector against
snmpsim): snmpsim runs the full pysnmp engine per request, 4.2 ms of CPU per probe of the uplink
(7.1 ms walking every interface) on its Linux recording, and would need a generated .snmprec plus
variation modules per router for growing counters and faults; one net-snmp snmpd per router costs a
process each (2,620 for the benchmark). This responder decodes and encodes with pysnmp's own
protocol modules (``pysnmp.proto.api``) on one asyncio loop, a UDP socket per router: 1.0-1.5 ms of
CPU per steady-state probe (one 8-varbind GET), about 3 ms for a router's first probe (ifNumber,
the name walk, the GET). 2,620 routers start in 0.5 s and cost about 3 CPU-seconds per round, so
one process holds the 10x benchmark on this 2-core machine.

Faults (``set_state``): ``up``; ``down`` (the link is dead: no answer at all); ``uplink_down``
(answers, the uplink's ifOperStatus is down(2), as seen over a backup path); ``slow`` (answers
``slow_delay`` seconds late); ``lossy`` (drops ``loss`` of the requests); ``flapping`` (dead for
half of every ``flap_period``); ``reboot`` (sysUpTime and counters restart from zero, then up).
Only SNMPv2c is served; a request with another community is ignored, like a real agent does.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import math
import os
import random
import resource
import secrets
import shutil
import tempfile
import time
import zlib
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905
from pysnmp.proto.api.verdec import decode_message_version

from agent.domain.secrets import resolve
from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase
from collectors.snmp import ber as snmp_ber

log = logging.getLogger(__name__)

COMMUNITY_ENV = "EGOV_SNMP_COMMUNITY"
STATES = ("up", "down", "uplink_down", "slow", "lossy", "flapping", "reboot")
MAX_VARBINDS = 512  # per GETBULK response, like an agent keeping its answer under a datagram's size

_V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
_SYSTEM = (1, 3, 6, 1, 2, 1, 1)
_IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
_IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
_GET, _GETNEXT, _GETBULK = (_V2C.GetRequestPDU.tagSet, _V2C.GetNextRequestPDU.tagSet, _V2C.GetBulkRequestPDU.tagSet)
_ENTERPRISE = (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)  # net-snmp's "Linux" agent OID: a generic router OS


def ensure_community() -> str:
    """The lab's SNMP community: ``EGOV_SNMP_COMMUNITY`` if set, else a fresh random one (set in the
    environment so the province configuration's ``env:EGOV_SNMP_COMMUNITY`` resolves)."""
    value = os.environ.get(COMMUNITY_ENV)
    if not value:
        value = os.environ[COMMUNITY_ENV] = "lab-" + secrets.token_urlsafe(12)
    return value


def raise_file_limit(needed: int) -> None:
    """One socket per router: 2,620 routers need more descriptors than the usual soft limit of 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass
class Interface:
    index: int
    name: str
    alias: str
    if_type: int  # IANAifType: 6 ethernetCsmacd, 24 softwareLoopback
    speed_mbps: int
    admin_up: bool = True
    uplink: bool = False
    in_rate: float = 0.0  # mean bytes per second
    out_rate: float = 0.0
    error_rate: float = 0.0  # errors per second
    phase: float = 0.0


@dataclass
class Router:
    target_id: str
    host: str
    community: bytes
    descr: str
    name: str
    location: str
    interfaces: list[Interface]
    boot: float  # time.monotonic() at the simulated boot
    state: str = "up"
    changed: float = 0.0  # when the state last changed (monotonic), for flapping and ifLastChange
    transport: asyncio.DatagramTransport | None = None
    port: int = 0
    requests: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def answering(self, now: float, flap_period: float) -> bool:
        if self.state == "down":
            return False
        if self.state == "flapping":
            return int((now - self.changed) / (flap_period / 2)) % 2 == 0
        return True

    def uplink_up(self, now: float, flap_period: float) -> bool:
        return self.state != "uplink_down" and self.answering(now, flap_period)


TRAFFIC_PERIOD = 300.0  # seconds of one swing of the simulated load
TRAFFIC_SWING = 0.6  # the load swings ±60% around its mean: counters still only grow


def octets(rate: float, phase: float, elapsed: float) -> int:
    """Bytes since boot at a load of ``rate × (1 + swing × sin(ωt + phase))``: its integral, monotonic."""
    omega = 2 * math.pi / TRAFFIC_PERIOD
    wave = TRAFFIC_SWING * rate / omega * (math.cos(phase) - math.cos(omega * elapsed + phase))
    return max(0, int(rate * elapsed + wave))


# --- the MIB: one sorted table of OIDs, values computed per router at request time ----------------

Getter = Callable[[Router, int, float, "SnmpSimulator"], Any]


def _ticks(seconds: float) -> rfc1902.TimeTicks:
    return rfc1902.TimeTicks(int(max(seconds, 0.0) * 100) % 2**32)


def _iface(router: Router, index: int) -> Interface:
    return router.interfaces[index - 1]


def _oper(router: Router, index: int, now: float, sim: SnmpSimulator) -> rfc1902.Integer:
    iface = _iface(router, index)
    if not iface.admin_up:
        return rfc1902.Integer(2)
    if iface.uplink and not router.uplink_up(now, sim.flap_period):
        return rfc1902.Integer(2)
    return rfc1902.Integer(1)


def _hc(direction: str) -> Getter:
    def get(router: Router, index: int, now: float, sim: SnmpSimulator) -> rfc1902.Counter64:
        iface = _iface(router, index)
        rate = iface.in_rate if direction == "in" else iface.out_rate
        return rfc1902.Counter64(octets(rate, iface.phase, now - router.boot) % 2**64)
    return get


def _c32(direction: str) -> Getter:
    def get(router: Router, index: int, now: float, sim: SnmpSimulator) -> rfc1902.Counter32:
        iface = _iface(router, index)
        rate = iface.in_rate if direction == "in" else iface.out_rate
        return rfc1902.Counter32(octets(rate, iface.phase, now - router.boot) % 2**32)
    return get


def _errors(share: float) -> Getter:
    def get(router: Router, index: int, now: float, sim: SnmpSimulator) -> rfc1902.Counter32:
        return rfc1902.Counter32(int((now - router.boot) * _iface(router, index).error_rate * share) % 2**32)
    return get


def _packets(direction: str) -> Getter:
    def get(router: Router, index: int, now: float, sim: SnmpSimulator) -> rfc1902.Counter32:
        iface = _iface(router, index)
        rate = iface.in_rate if direction == "in" else iface.out_rate
        return rfc1902.Counter32(octets(rate, iface.phase, now - router.boot) // 700 % 2**32)
    return get


SCALARS: list[tuple[tuple[int, ...], Getter]] = [
    ((*_SYSTEM, 1, 0), lambda r, i, now, s: rfc1902.OctetString(r.descr)),
    ((*_SYSTEM, 2, 0), lambda r, i, now, s: rfc1902.ObjectIdentifier(_ENTERPRISE)),
    ((*_SYSTEM, 3, 0), lambda r, i, now, s: _ticks(now - r.boot)),
    ((*_SYSTEM, 4, 0), lambda r, i, now, s: rfc1902.OctetString("noc@stttt.bacgiang.gov.vn (lab)")),
    ((*_SYSTEM, 5, 0), lambda r, i, now, s: rfc1902.OctetString(r.name)),
    ((*_SYSTEM, 6, 0), lambda r, i, now, s: rfc1902.OctetString(r.location)),
    ((*_SYSTEM, 7, 0), lambda r, i, now, s: rfc1902.Integer(6)),
    (_IF_NUMBER, lambda r, i, now, s: rfc1902.Integer(len(r.interfaces))),
]

IF_COLUMNS: list[tuple[tuple[int, ...], Getter]] = [
    ((*_IF_ENTRY, 1), lambda r, i, now, s: rfc1902.Integer(i)),
    ((*_IF_ENTRY, 2), lambda r, i, now, s: rfc1902.OctetString(_iface(r, i).name)),
    ((*_IF_ENTRY, 3), lambda r, i, now, s: rfc1902.Integer(_iface(r, i).if_type)),
    ((*_IF_ENTRY, 4), lambda r, i, now, s: rfc1902.Integer(1500 if _iface(r, i).if_type == 6 else 1514)),
    ((*_IF_ENTRY, 5), lambda r, i, now, s: rfc1902.Gauge32(min(_iface(r, i).speed_mbps * 1_000_000, 2**32 - 1))),
    ((*_IF_ENTRY, 6), lambda r, i, now, s: rfc1902.OctetString(bytes([0x00, 0x1B, 0x54, 0x77, r.port % 256, i]))),
    ((*_IF_ENTRY, 7), lambda r, i, now, s: rfc1902.Integer(1 if _iface(r, i).admin_up else 2)),
    ((*_IF_ENTRY, 8), _oper),
    ((*_IF_ENTRY, 9), lambda r, i, now, s: _ticks(r.changed - r.boot if _iface(r, i).uplink else 0)),
    ((*_IF_ENTRY, 10), _c32("in")),
    ((*_IF_ENTRY, 11), _packets("in")),
    ((*_IF_ENTRY, 13), lambda r, i, now, s: rfc1902.Counter32(0)),
    ((*_IF_ENTRY, 14), _errors(1.0)),
    ((*_IF_ENTRY, 16), _c32("out")),
    ((*_IF_ENTRY, 17), _packets("out")),
    ((*_IF_ENTRY, 19), lambda r, i, now, s: rfc1902.Counter32(0)),
    ((*_IF_ENTRY, 20), _errors(0.25)),
    ((*_IFX_ENTRY, 1), lambda r, i, now, s: rfc1902.OctetString(_iface(r, i).name)),
    ((*_IFX_ENTRY, 6), _hc("in")),
    ((*_IFX_ENTRY, 10), _hc("out")),
    ((*_IFX_ENTRY, 15), lambda r, i, now, s: rfc1902.Gauge32(_iface(r, i).speed_mbps)),
    ((*_IFX_ENTRY, 18), lambda r, i, now, s: rfc1902.OctetString(_iface(r, i).alias)),
]


class MibTable:
    """The sorted OIDs of a router with ``interfaces`` interfaces (every lab router has the same shape)."""

    def __init__(self, interfaces: int) -> None:
        rows: list[tuple[tuple[int, ...], Getter, int]] = [(oid, get, 0) for oid, get in SCALARS]
        for column, get in IF_COLUMNS:
            rows += [((*column, index), get, index) for index in range(1, interfaces + 1)]
        rows.sort(key=lambda row: row[0])
        self.oids = [row[0] for row in rows]
        self.rows = rows
        self.exact = {row[0]: row for row in rows}
        # Objects (a scalar without .0, a column): a GET below one of them is noSuchInstance, else noSuchObject.
        self.objects = {oid[:-1] for oid, _ in SCALARS} | {column for column, _ in IF_COLUMNS}

    def get(self, oid: tuple[int, ...]):
        return self.exact.get(oid)

    def next(self, oid: tuple[int, ...]):
        position = bisect_right(self.oids, oid)
        return self.rows[position] if position < len(self.rows) else None

    def missing(self, oid: tuple[int, ...]):
        if any(oid[:n] in self.objects for n in range(len(oid) - 1, 6, -1)):
            return rfc1905.noSuchInstance
        return rfc1905.noSuchObject


# --- the per-router UDP endpoint ------------------------------------------------------------


class _RouterProtocol(asyncio.DatagramProtocol):
    def __init__(self, simulator: SnmpSimulator, router: Router) -> None:
        self.simulator = simulator
        self.router = router

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.simulator.handle(self.router, data, addr)


class SnmpSimulator(SimulatorBase):
    kind = "snmp"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None,
                 slow_delay: float = 1.5, loss: float = 0.3, flap_period: float = 20.0, port: int = 0) -> None:
        super().__init__(pool, seed, peers)
        self.slow_delay = slow_delay
        self.loss = loss
        self.flap_period = flap_period
        self.port = port  # 0: an ephemeral port per router, written into the agent configuration
        self.routers: dict[str, Router] = {}
        self.table = MibTable(4)
        self.malformed = 0
        self._secret_dir: Path | None = None
        self._community_file: Path | None = None

    # -- the simulator interface of the lab -----------------------------------------------------

    @staticmethod
    def prepare_environment() -> None:
        ensure_community()  # the province's configuration reads it as env:EGOV_SNMP_COMMUNITY

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        host = self.pool.take(str(params.get("host", target_id)))
        community = self._community(params)
        router = self._make_router(target_id, host, community)
        raise_file_limit(len(self.routers) + 256)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _RouterProtocol(self, router),
                                                           local_addr=(host, self.port))
        router.transport = transport
        router.port = transport.get_extra_info("sockname")[1]
        self.routers[target_id] = router
        if not up:
            await self.set_state(target_id, "down")
        out = {k: v for k, v in params.items() if k not in ("v3", "community", "version")}
        return {**out, "host": host, "port": router.port, "version": "2c",
                "community": f"file:{self._community_path(community)}"}

    async def set_state(self, target_id: str, state: str) -> None:
        router = self.routers[target_id]
        if state not in STATES:
            raise ValueError(f"snmp targets can be {', '.join(STATES)}, not {state!r}")
        now = time.monotonic()
        if state == "reboot":
            router.boot = now
            state = "up"
        router.state = state
        router.changed = now

    def states(self) -> dict[str, str]:
        return {t: r.state for t, r in self.routers.items()}

    async def close(self) -> None:
        for router in self.routers.values():
            if router.transport is not None:
                router.transport.close()
                router.transport = None
        if self._secret_dir is not None:
            shutil.rmtree(self._secret_dir, ignore_errors=True)
            self._secret_dir = None

    def endpoint(self, target_id: str) -> tuple[str, int]:
        router = self.routers[target_id]
        return router.host, router.port

    # -- routers ------------------------------------------------------------------------------

    def _community(self, params: dict[str, Any]) -> str:
        reference = params.get("community")
        if isinstance(reference, str):
            with contextlib.suppress(ValueError):
                return resolve(reference).reveal()
        return ensure_community()

    def _community_path(self, community: str) -> Path:
        """The agent reads the community from a private file, so no configuration holds it in the clear."""
        if self._secret_dir is None:
            self._secret_dir = Path(tempfile.mkdtemp(prefix="egov-lab-snmp-"))
            atexit.register(shutil.rmtree, self._secret_dir, True)  # also when close() is never reached
        path = self._secret_dir / f"community-{zlib.crc32(community.encode()):08x}"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(community + "\n")
        return path

    def _make_router(self, target_id: str, host: str, community: str) -> Router:
        rng = random.Random(f"{self.seed}:{target_id}")
        unit = target_id.removesuffix("-snmp")
        commune = unit.count("-") >= 2 and unit.rsplit("-", 1)[-1].isdigit()
        uplink_mbps = 100 if commune else 1000
        load = rng.uniform(0.03, 0.35) * uplink_mbps * 1_000_000 / 8  # mean bytes/s into the unit
        interfaces = [
            Interface(1, "GigabitEthernet0/0/0", f"WAN uplink {unit} - THDL", 6, uplink_mbps, uplink=True,
                      in_rate=load, out_rate=load * rng.uniform(0.2, 0.6), error_rate=rng.uniform(0, 0.01),
                      phase=rng.uniform(0, 2 * math.pi)),
            Interface(2, "GigabitEthernet0/0/1", f"LAN {unit}", 6, 1000, in_rate=load * 0.4, out_rate=load * 0.9,
                      phase=rng.uniform(0, 2 * math.pi)),
            Interface(3, "GigabitEthernet0/0/2", "", 6, 1000, admin_up=False),
            Interface(4, "Loopback0", "router-id", 24, 8000, in_rate=50.0, out_rate=50.0),
        ]
        now = time.monotonic()
        return Router(
            target_id=target_id, host=host, community=community.encode(),
            descr=f"Lab router (egov-agent simulated province), IOS-XE 17.9, unit {unit}",
            name=f"{unit}-rtr", location=f"UBND {unit} (simulated)", interfaces=interfaces,
            boot=now - rng.uniform(1, 90) * 86400, changed=now, rng=rng,
        )

    # -- requests -----------------------------------------------------------------------------

    def handle(self, router: Router, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic()
        if not router.answering(now, self.flap_period):
            return
        if router.state == "lossy" and router.rng.random() < self.loss:
            return
        try:
            response = self.respond(router, data, now)
        except Exception as exc:  # PyAsn1Error, ProtocolError...: garbage must not stop the router
            self.malformed += 1
            log.debug("lab snmp %s: undecodable request from %s: %s", router.target_id, addr, exc)
            return
        if response is None or router.transport is None:
            return
        router.requests += 1
        if router.state == "slow":
            transport = router.transport
            asyncio.get_running_loop().call_later(self.slow_delay, _send, transport, response, addr)
        else:
            router.transport.sendto(response, addr)

    def respond(self, router: Router, data: bytes, now: float) -> bytes | None:
        """The answer to one request: read and written by collectors.snmp_ber, pysnmp for what it refuses."""
        try:
            request = snmp_ber.decode(data, as_agent=True)
        except snmp_ber.Refused:
            return self._respond_pysnmp(router, data, now)
        if request.community != router.community:
            return None
        names = [name for name, _, _ in request.varbinds]
        out = self._answer(router, request.pdu, names, request.error_status, request.error_index, now)
        if out is None:
            return None
        varbinds = [(tuple(name), *_plain(value)) for name, value in out]
        return snmp_ber.encode(snmp_ber.Message(snmp_ber.V2C, request.community, snmp_ber.RESPONSE,
                                                request.request_id, 0, 0, varbinds))

    def _answer(self, router: Router, pdu: int, names: list[tuple[int, ...]], non_repeaters: int, repetitions: int,
                now: float) -> list[tuple[Any, Any]] | None:
        table = self.table
        out: list[tuple[Any, Any]] = []
        if pdu == snmp_ber.GET:
            for key in names:
                row = table.get(key)
                out.append((key, row[1](router, row[2], now, self) if row else table.missing(key)))
        elif pdu == snmp_ber.GETNEXT:
            out = [self._next(router, key, now) for key in names]
        elif pdu == snmp_ber.GETBULK:
            out = self._bulk(router, names, non_repeaters, repetitions, now)
        else:
            return None  # SET and notifications: this lab router is read-only and sends no traps
        return out

    def _respond_pysnmp(self, router: Router, data: bytes, now: float) -> bytes | None:
        if decode_message_version(data) != api.SNMP_VERSION_2C:
            return None
        message, _ = decoder.decode(data, asn1Spec=_V2C.Message())
        if bytes(_V2C.apiMessage.get_community(message)) != router.community:
            return None  # a wrong community gets no answer, as from a real agent
        request = _V2C.apiMessage.get_pdu(message)
        response_message = _V2C.apiMessage.get_response(message)
        response = _V2C.apiMessage.get_pdu(response_message)
        varbinds = _V2C.apiPDU.get_varbinds(request)
        table = self.table
        out: list[tuple[Any, Any]] = []
        tag = request.tagSet
        if tag == _GET:
            for oid, _ in varbinds:
                key = tuple(oid)
                row = table.get(key)
                out.append((oid, row[1](router, row[2], now, self) if row else table.missing(key)))
        elif tag == _GETNEXT:
            out = [self._next(router, tuple(oid), now) for oid, _ in varbinds]
        elif tag == _GETBULK:
            out = self._bulk(router, [tuple(oid) for oid, _ in varbinds],
                             int(_V2C.apiBulkPDU.get_non_repeaters(request)),
                             int(_V2C.apiBulkPDU.get_max_repetitions(request)), now)
        else:
            return None  # SET and notifications: this lab router is read-only and sends no traps
        _V2C.apiPDU.set_varbinds(response, out)
        return encoder.encode(response_message)

    def _bulk(self, router: Router, names: list[tuple[int, ...]], non_repeaters: int, repetitions: int,
              now: float) -> list[tuple[Any, Any]]:
        """A GETBULK's answer: the non-repeaters' next objects, then rows of the columns' next ones, bounded
        by MAX_VARBINDS and ended early when every column is past the end of the MIB view."""
        non_repeaters, repetitions = max(0, non_repeaters), max(0, repetitions)
        out = [self._next(router, key, now) for key in names[:non_repeaters]]
        columns = names[non_repeaters:]
        if columns:
            repetitions = min(repetitions, max(1, (MAX_VARBINDS - len(out)) // len(columns)))
        for _ in range(repetitions if columns else 0):
            row = [self._next(router, oid, now) for oid in columns]
            out += row
            columns = [tuple(oid) for oid, _ in row]
            if all(value is rfc1905.endOfMibView for _, value in row):
                break
        return out

    def _next(self, router: Router, oid: tuple[int, ...], now: float):
        row = self.table.next(oid)
        if row is None:
            return (oid, rfc1905.endOfMibView)
        return (row[0], row[1](router, row[2], now, self))


_TAGS: dict[type, int] = {}


def _plain(value: Any) -> tuple[int, snmp_ber.Value]:
    """(identifier octet, plain value) of one of pysnmp's values, for snmp_ber.encode."""
    cls = type(value)
    tag = _TAGS.get(cls)
    if tag is None:
        base = cls.tagSet[0]
        tag = _TAGS[cls] = int(base.tagClass) | int(base.tagFormat) | int(base.tagId)
    if tag in (snmp_ber.NULL, snmp_ber.NO_SUCH_OBJECT, snmp_ber.NO_SUCH_INSTANCE, snmp_ber.END_OF_MIB_VIEW):
        return tag, None
    if tag in (snmp_ber.OCTET_STRING, snmp_ber.IP_ADDRESS, snmp_ber.OPAQUE):
        return tag, bytes(value)
    if tag == snmp_ber.OBJECT_IDENTIFIER:
        return tag, tuple(value)
    return tag, int(value)


def _send(transport: asyncio.DatagramTransport, data: bytes, addr: tuple[str, int]) -> None:
    if not transport.is_closing():
        transport.sendto(data, addr)
