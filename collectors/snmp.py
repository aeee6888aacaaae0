"""SNMP: a WAN router's uplink (IF-MIB) and uptime (SNMPv2-MIB), over v2c (our own fast path) or v3 (pysnmp).

One probe of a router:

1. once per device (again after a reboot, when the uplink's row vanishes, or after ``names_refresh``),
   a GET of ifNumber then GETBULK walks of ifName, ifAlias and ifDescr (max-repetitions sized by
   ifNumber) find the uplink by the configured name, alias or index, and are cached;
2. then one GET of sysUpTime.0 and the uplink's ifOperStatus, ifAdminStatus, ifHCInOctets,
   ifHCOutOctets, ifHighSpeed, ifInErrors and ifOutErrors (8 varbinds, one round trip). With the
   setting ``all_interfaces: true`` a GETBULK walk of those seven columns replaces the GET and
   every interface is exported.

The target is up when the router answered and its uplink's ifOperStatus is up(1). Each failure is
that device's alone and has a fixed reason: ``snmp_timeout`` (no answer: also what a wrong v2c
community gives, since agents ignore it), ``snmp_auth_error`` (v3: unknown user, wrong key,
decryption error), ``snmp_no_such_object`` (an object the probe needs is missing),
``snmp_wrong_type`` (a value of the wrong SMI type), ``snmp_malformed`` (the answer could not be
decoded), ``snmp_error`` (an error-status, an unexpected OID), ``interface_not_found`` (no
interface matches the selector), and ``uplink_down`` / ``uplink_admin_down`` when the device
answered but its uplink is not up.

A reboot is seen when the boot time implied by sysUpTime (now − uptime) moves forward between two
probes by more than an answer's latency could explain (a 497-day wrap of the 32-bit counter is not
a reboot); it increments ``snmp_reboots``, drops the interface cache (indexes may be renumbered at
boot) and the next figures come from a second, fresh pass of the same probe.

One client serves every v2c device of the collector (``collectors.snmp_v2c``: one UDP socket per
address family, requests encoded once per device, answers read by ``collectors.snmp_ber`` without
pyasn1 objects, pysnmp only for what that codec refuses), so thousands of concurrent probes cost
one file descriptor and no per-device engine state. v3 devices share one pysnmp SnmpEngine (USM
needs it). SNMPv3 keys are per user name: devices sharing a v3 user must
share its keys (pysnmp's USM keeps one entry per user). Both accept an answer only from the address
the request went to, with the request's random id (and, v2c, its community): see
``collectors.snmp_replies``; what they drop is counted in ``egov_snmp_replies_dropped_total`` by
reason. An undecodable answer (v2c or v3), or a v2c one with another community, from the device's
own address makes the probe ``snmp_malformed`` if no good answer follows. A v3 answer that decodes
but fails authentication or decryption still reads as ``snmp_timeout``: USM drops it unattributed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyasn1.error import PyAsn1Error
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.error import ProtocolError
from pysnmp.proto.rfc1902 import ObjectName

from collectors import snmp_ber, snmp_v2c
from collectors.base import Collector, Family, ProbeFailure, ProbeResult, Sample, StrictModel
from collectors.models.snmp import InterfaceSelector, SnmpParams, SnmpSettings
from collectors.snmp_drops import DROP_REASONS, DROPPED_REPLIES, Address, dropped_samples

Oid = tuple[int, ...]
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_NUMBER: Oid = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_DESCR: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_NAME: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
IF_ALIAS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18)

_INTEGER = rfc1902.Integer32.tagSet
# The seven IF-MIB columns read on every probe, with the SMI type each must have.
COLUMNS: dict[str, tuple[Oid, Any]] = {
    "oper": ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8), _INTEGER),
    "admin": ((1, 3, 6, 1, 2, 1, 2, 2, 1, 7), _INTEGER),
    "in_octets": ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6), rfc1902.Counter64.tagSet),
    "out_octets": ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10), rfc1902.Counter64.tagSet),
    "speed": ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15), rfc1902.Gauge32.tagSet),
    "in_errors": ((1, 3, 6, 1, 2, 1, 2, 2, 1, 14), rfc1902.Counter32.tagSet),
    "out_errors": ((1, 3, 6, 1, 2, 1, 2, 2, 1, 20), rfc1902.Counter32.tagSet),
}
_MISSING = (rfc1905.NoSuchObject.tagSet, rfc1905.NoSuchInstance.tagSet)
_END = rfc1905.EndOfMibView.tagSet
_UPTIME_WRAP = 2**32  # sysUpTime is a 32-bit count of centiseconds: it wraps after 497 days
REBOOT_SLACK = 5.0  # seconds of disagreement between clocks tolerated before calling it a reboot
_WALK_ROUNDS = 64  # GETBULK rounds per walk at most: bounds a device that never ends its table
RECEIVE_BUFFER = 4 * 1024 * 1024
_TEMPLATES_PER_DEVICE = 16  # requests kept encoded per device: the probe's GET and a walk's first rounds
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._:/+-]")

# pysnmp's names of the USM protocols (its v3arch engine is imported at the first v3 device only).
_AUTH_PROTOCOLS = {"sha": "USM_AUTH_HMAC96_SHA", "sha224": "USM_AUTH_HMAC128_SHA224",
                   "sha256": "USM_AUTH_HMAC192_SHA256", "sha384": "USM_AUTH_HMAC256_SHA384",
                   "sha512": "USM_AUTH_HMAC384_SHA512"}
_PRIV_PROTOCOLS = {"aes": "USM_PRIV_CFB128_AES", "aes192": "USM_PRIV_CFB192_AES", "aes256": "USM_PRIV_CFB256_AES"}
_AUTH_ERRORS = (errind.WrongDigest, errind.UnknownUserName, errind.DecryptionError, errind.AuthenticationError,
                errind.AuthenticationFailure, errind.UnsupportedSecurityLevel, errind.UnknownSecurityName,
                errind.NotInTimeWindow, errind.UnknownCommunityName)
_MALFORMED = (errind.ParseError, errind.DeserializationError)


@dataclass
class _Session:
    params: SnmpParams
    # v3: pysnmp's UsmUserData (its repr shows the keys): kept out of this dataclass's repr. v2c: None.
    auth: Any = field(repr=False)
    target: Any = None  # v3: a pysnmp UdpTransportTarget or Udp6TransportTarget
    address: tuple[str, int] = ("", 0)
    reboot_slack: float = 0.0  # seconds: an answer's latency may shift the boot time this much
    timeout: float = 0.0
    retries: int = 0
    community: bytes = field(default=b"", repr=False)  # v2c: as it goes on the wire
    # v2c requests encoded once (oids, GETBULK shape) -> template: only the request id changes per probe
    templates: dict[tuple[tuple[Oid, ...], tuple[int, int] | None], snmp_ber.Template] = field(
        default_factory=dict, repr=False)


@dataclass
class _Device:
    """What the collector remembers of one router between probes."""

    names: dict[int, tuple[str, str, str]] | None = None  # ifIndex -> (ifName, ifAlias, ifDescr)
    names_at: float = 0.0
    uplink: int | None = None
    boot: float | None = None  # monotonic time of the device's boot, from sysUpTime
    ticks: int | None = None
    reboots: int = 0
    last: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # ifIndex -> (ticks, in, out)


@dataclass
class _Row:
    index: int
    values: dict[str, Any]


def _value_error(what: str, value: Any) -> ProbeFailure:
    if value.tagSet in _MISSING or value.tagSet == _END:
        return ProbeFailure("snmp_no_such_object", f"{what}: {type(value).__name__}")
    return ProbeFailure("snmp_wrong_type", f"{what}: got {type(value).__name__}")


def safe_label(text: str) -> str:
    """An interface name fit for a label: device text, so only a short run of safe characters."""
    return _SAFE_NAME.sub("_", text)[:64]


async def _resolve(host: str, port: int) -> Address:
    """The (address, port) replies come from, as pysnmp's transport targets resolve it: an IP literal as
    written (no resolver thread for each of thousands of routers), a name by getaddrinfo."""
    with contextlib.suppress(ValueError):
        return (str(ipaddress.ip_address(host)), port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    found = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM,
                                                         proto=socket.IPPROTO_UDP)
    return (str(found[0][4][0]), int(found[0][4][1]))


def _client_transport(family: int) -> Any:
    """A UDP socket for every device, with a receive buffer big enough for a burst of answers from
    thousands of routers (the default 208 KiB holds about 200 answers and drops the rest)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
    sock.setblocking(False)
    from pysnmp.carrier.asyncio.dgram import udp, udp6

    transport = udp6.Udp6AsyncioTransport() if family == socket.AF_INET6 else udp.UdpAsyncioTransport()
    return transport.open_server_mode(sock=sock)


class SnmpCollector(Collector):
    kind = "snmp"
    Params: ClassVar[type[StrictModel]] = SnmpParams  # declared as in Collector: PowerCollector sets its own
    Settings: ClassVar[type[StrictModel]] = SnmpSettings
    families: ClassVar[tuple[Family, ...]] = (
        Family("snmp_uptime_seconds", "gauge", "Time since the device (re)started its SNMP agent, from sysUpTime."),
        Family("snmp_reboots", "counter", "Reboots seen since the agent started (sysUpTime went back)."),
        Family("snmp_if_info", "gauge", "Interface name (ifName, sanitised); role uplink or other.",
               ("ifindex", "role", "ifname")),
        Family("snmp_if_oper_status", "gauge", "ifOperStatus: 1 up, 2 down, 3 testing, 5 dormant, 7 lowerLayerDown.",
               ("ifindex", "role")),
        Family("snmp_if_admin_status", "gauge", "ifAdminStatus: 1 up, 2 down, 3 testing.", ("ifindex", "role")),
        Family("snmp_if_in_octets", "counter", "Bytes received (ifHCInOctets).", ("ifindex", "role")),
        Family("snmp_if_out_octets", "counter", "Bytes sent (ifHCOutOctets).", ("ifindex", "role")),
        Family("snmp_if_in_errors", "counter", "Inbound packets with errors (ifInErrors).", ("ifindex", "role")),
        Family("snmp_if_out_errors", "counter", "Outbound packets with errors (ifOutErrors).", ("ifindex", "role")),
        Family("snmp_if_speed_bytes_per_second", "gauge",
               "Interface speed in bytes per second (ifHighSpeed × 10^6 / 8).", ("ifindex", "role")),
        Family("snmp_if_utilisation_ratio", "gauge",
               "Share of the interface speed used between the last two probes, per direction.",
               ("ifindex", "role", "direction")),
    )
    self_families = (DROPPED_REPLIES,)

    def __init__(self, settings: StrictModel) -> None:
        super().__init__(settings)
        assert isinstance(settings, SnmpSettings)
        self.settings: SnmpSettings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: snmp_v2c.V2cClient | None = None  # v2c: one socket per address family
        self._engine: Any = None  # v3: a pysnmp SnmpEngine, created at the first v3 target
        self._context: Any = None
        self._sessions: dict[str, _Session] = {}
        self._devices: dict[str, _Device] = {}
        self._malformed: dict[Address, float] = {}  # a device's address -> when it last sent garbage
        self._addresses: set[Address] = set()  # of the devices probed: only their garbage is remembered
        self.dropped_replies: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)

    # -- transports ---------------------------------------------------------------------------
    # SNMPv2c goes through the fast path of collectors.snmp_v2c (no SNMP engine, no pyasn1 objects
    # in the steady state): the v3arch engine adds every device to its SNMP-TARGET-MIB and rebuilds
    # a transport-to-tag map on each addition, which made the first round over 2,620 routers
    # quadratic. SNMPv3 needs the engine (USM, engine-id discovery).

    def _bind_loop(self) -> None:
        """pysnmp binds its sockets to the loop that opened them; a new loop (a test's) gets new ones."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._close_transports()
            self._loop = loop
            self._sessions.clear()
            self._addresses.clear()

    def _v2c(self) -> snmp_v2c.V2cClient:
        self._bind_loop()
        if self._client is None:
            self._client = snmp_v2c.V2cClient(self._note_dropped, RECEIVE_BUFFER)
        return self._client

    def _v3(self) -> Any:
        self._bind_loop()
        if self._engine is None:
            from pysnmp.carrier.asyncio.dgram import udp
            from pysnmp.entity import config as engine_config
            from pysnmp.hlapi.v3arch import asyncio as v3arch

            from collectors.snmp_replies import matching_engine

            self._engine = matching_engine(self._note_dropped)
            self._context = v3arch.ContextData()
            engine_config.add_transport(self._engine, udp.DOMAIN_NAME, _client_transport(socket.AF_INET))
        return self._engine

    def _note_dropped(self, reason: str, source: Address) -> None:
        """A reply was dropped; garbage from a device's own address tells why its request gets no answer."""
        self.dropped_replies[reason] += 1
        if reason in ("malformed", "wrong_community") and source in self._addresses:
            self._malformed[source] = time.monotonic()

    def self_samples(self) -> list[Sample]:
        return dropped_samples(self.dropped_replies)

    def _close_transports(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.close_dispatcher()
        self._client = self._engine = None

    async def close(self) -> None:
        self._close_transports()
        self._sessions.clear()
        self._loop = None

    # -- sessions -----------------------------------------------------------------------------

    async def _session(self, target_id: str, params: SnmpParams) -> _Session:
        self._bind_loop()
        session = self._sessions.get(target_id)
        if session is not None and (session.params is params or session.params == params):  # == costs 14 µs
            return session
        timeout = params.timeout if params.timeout is not None else self.settings.timeout
        retries = params.retries if params.retries is not None else self.settings.retries
        host = str(params.host)
        auth: Any = None
        target: Any = None
        community = b""
        if params.v3 is not None:
            from pysnmp.hlapi.v3arch import asyncio as v3arch

            cls = v3arch.Udp6TransportTarget if ":" in host else v3arch.UdpTransportTarget
            target = await cls.create((host, params.port), timeout=timeout, retries=retries)
            address = (str(target.transport_address[0]), int(target.transport_address[1]))
            v3 = params.v3
            auth = v3arch.UsmUserData(v3.user, authKey=v3.auth_key.reveal(), privKey=v3.priv_key.reveal(),
                                      authProtocol=getattr(v3arch, _AUTH_PROTOCOLS[v3.auth_protocol]),
                                      privProtocol=getattr(v3arch, _PRIV_PROTOCOLS[v3.priv_protocol]))
        else:
            assert params.community is not None
            address = await _resolve(host, params.port)
            community = bytes(rfc1902.OctetString(params.community.reveal()))
        if session is not None:  # the target's configuration changed: forget what we knew of it
            self._devices.pop(target_id, None)
        slack = max(REBOOT_SLACK, timeout * (retries + 1) + 1.0)
        session = self._sessions[target_id] = _Session(params, auth, target, address, slack, timeout, retries,
                                                       community)
        self._addresses.add(address)
        return session

    # -- requests -----------------------------------------------------------------------------

    async def _request(self, session: _Session, oids: list[Oid], bulk: tuple[int, int] | None = None,
                       ) -> list[tuple[Any, Any]]:
        """One GET (or GETBULK with ``bulk = (non-repeaters, max-repetitions)``); errors become ProbeFailure."""
        if session.params.v3 is None:
            return await self._request_v2c(session, oids, bulk)
        from pysnmp.hlapi.v3arch import asyncio as v3arch

        varbinds = [(ObjectName(oid), rfc1902.Null()) for oid in oids]
        started = time.monotonic()
        try:
            engine = self._v3()
            if bulk is None:
                answer = await v3arch.get_cmd(engine, session.auth, session.target, self._context, *varbinds,
                                              lookupMib=False)
            else:
                answer = await v3arch.bulk_cmd(engine, session.auth, session.target, self._context, *bulk,
                                               *varbinds, lookupMib=False)
        except ProbeFailure:
            raise
        except (PyAsn1Error, ProtocolError) as exc:
            raise ProbeFailure("snmp_malformed", type(exc).__name__) from None
        except Exception as exc:  # pysnmp raises for answers it cannot make sense of
            raise ProbeFailure("snmp_error", type(exc).__name__) from None
        indication, status, index, answered = answer
        self._check(session, started, indication, status, index)
        return list(answered)

    async def _request_v2c(self, session: _Session, oids: list[Oid], bulk: tuple[int, int] | None,
                           ) -> list[tuple[Any, Any]]:
        """The fast path: the request from its template, the answer read by collectors.snmp_ber."""
        client = self._v2c()
        key = (tuple(oids), bulk)
        template = session.templates.get(key)
        if template is None:
            template = snmp_ber.request(session.community, snmp_ber.GET if bulk is None else snmp_ber.GETBULK,
                                        oids, *(bulk or (0, 0)))
            if len(session.templates) < _TEMPLATES_PER_DEVICE:
                session.templates[key] = template
        started = time.monotonic()
        try:
            message = await client.request(session.address, session.community, template, session.timeout,
                                           session.retries)
        except snmp_v2c.Timeout as exc:
            if self._malformed.get(session.address, -math.inf) >= started:
                raise ProbeFailure("snmp_malformed", "the device answered undecodably or with another community"
                                   ) from None
            raise ProbeFailure("snmp_timeout", str(exc)) from None
        if message.error_status != 0:
            status = rfc1905.errorStatus.clone(message.error_status).prettyPrint()
            reason = "snmp_auth_error" if message.error_status == 16 else "snmp_error"  # 16: authorizationError
            raise ProbeFailure(reason, f"error-status {status} at varbind {message.error_index}")
        typed = snmp_v2c.typed
        return [(name, typed(tag, value)) for name, tag, value in message.varbinds]

    def _check(self, session: _Session, started: float, error_indication: Any, error_status: Any,
               error_index: Any) -> None:
        if error_indication:
            if isinstance(error_indication, errind.RequestTimedOut):
                if self._malformed.get(session.address, -math.inf) >= started:
                    raise ProbeFailure("snmp_malformed", "the device answered undecodably or with another community")
                raise ProbeFailure("snmp_timeout", str(error_indication))
            if isinstance(error_indication, _AUTH_ERRORS):
                raise ProbeFailure("snmp_auth_error", type(error_indication).__name__)
            if isinstance(error_indication, _MALFORMED):
                raise ProbeFailure("snmp_malformed", type(error_indication).__name__)
            raise ProbeFailure("snmp_error", type(error_indication).__name__)
        if error_status and int(error_status) != 0:
            status = error_status.prettyPrint() if hasattr(error_status, "prettyPrint") else str(error_status)
            reason = "snmp_auth_error" if int(error_status) == 16 else "snmp_error"  # 16: authorizationError
            raise ProbeFailure(reason, f"error-status {status} at varbind {error_index}")

    async def _get(self, session: _Session, oids: list[Oid]) -> list[Any]:
        varbinds = await self._request(session, oids)
        if len(varbinds) != len(oids):
            raise ProbeFailure("snmp_error", f"{len(varbinds)} varbinds in the answer to a GET of {len(oids)}")
        values = []
        for oid, (name, value) in zip(oids, varbinds, strict=True):
            if tuple(name) != oid:
                raise ProbeFailure("snmp_error", f"asked {oid}, answer names {tuple(name)}")
            values.append(value)
        return values

    async def _walk(self, session: _Session, columns: list[Oid], repetitions: int,
                    first: list[Oid] | None = None) -> tuple[list[Any], dict[Oid, dict[int, Any]]]:
        """GETBULK walk of table columns side by side; ``first`` are non-repeaters asked in round one
        (GETNEXT semantics: ask sysUpTime as 1.3.6.1.2.1.1.3 to get sysUpTime.0)."""
        found: dict[Oid, dict[int, Any]] = {c: {} for c in columns}
        cursor = {c: c for c in columns}
        active = list(columns)
        heads: list[Any] = []
        first = list(first or [])
        repetitions = max(1, min(repetitions, self.settings.max_repetitions))
        for _ in range(_WALK_ROUNDS):
            asked = first + [cursor[c] for c in active]
            varbinds = await self._request(session, asked, (len(first), repetitions))
            if len(varbinds) < len(asked):
                raise ProbeFailure("snmp_error", f"GETBULK answer has {len(varbinds)} varbinds for {len(asked)}")
            if first:
                heads, varbinds = list(varbinds[:len(first)]), varbinds[len(first):]
                first = []
            width = len(active)
            done: set[Oid] = set()
            for row_start in range(0, len(varbinds) - width + 1, width):
                for column, (name, value) in zip(active, varbinds[row_start:row_start + width], strict=True):
                    if column in done:
                        continue
                    oid = tuple(name)
                    if value.tagSet == _END or oid[:len(column)] != column:
                        done.add(column)
                        continue
                    if oid <= cursor[column]:
                        raise ProbeFailure("snmp_error", f"OIDs not increasing in the walk of {column}")
                    cursor[column] = oid
                    if len(oid) == len(column) + 1:
                        found[column][oid[-1]] = value
            active = [c for c in active if c not in done]
            if not active:
                return heads, found
        raise ProbeFailure("snmp_error", f"walk longer than {_WALK_ROUNDS} GETBULK rounds")

    # -- interfaces ---------------------------------------------------------------------------

    async def _load_names(self, session: _Session, device: _Device) -> None:
        # ifNumber sizes the GETBULK: a router with 4 interfaces gets 3 × 5 varbinds, not 3 × 25.
        (count,) = await self._get(session, [IF_NUMBER])
        sized = count.tagSet == _INTEGER and 0 <= int(count) < 10_000
        hint = int(count) + 1 if sized else self.settings.max_repetitions
        _, found = await self._walk(session, [IF_DESCR, IF_NAME, IF_ALIAS], hint)
        names: dict[int, tuple[str, str, str]] = {}
        for index in sorted(set(found[IF_DESCR]) | set(found[IF_NAME])):
            texts = []
            for what, column in (("ifName", IF_NAME), ("ifAlias", IF_ALIAS), ("ifDescr", IF_DESCR)):
                value = found[column].get(index)
                if value is not None and value.tagSet != rfc1902.OctetString.tagSet:
                    raise _value_error(f"{what}.{index}", value)
                texts.append(bytes(value).decode("utf-8", "replace") if value is not None else "")
            names[index] = (texts[0], texts[1], texts[2])
        device.names, device.names_at = names, time.monotonic()

    @staticmethod
    def _find_uplink(device: _Device, selector: InterfaceSelector) -> int | None:
        """By ifIndex, by ifAlias, or by ifName (ifDescr for a device without ifXTable)."""
        names = device.names or {}
        if selector.index is not None:
            return selector.index if selector.index in names else None
        if selector.alias is not None:
            return next((i for i, (_, alias, _) in names.items() if alias == selector.alias), None)
        by_name = next((i for i, (name, _, _) in names.items() if name == selector.name), None)
        if by_name is None:
            by_name = next((i for i, (_, _, descr) in names.items() if descr == selector.name), None)
        return by_name

    async def _uplink(self, session: _Session, device: _Device, refresh: bool = False) -> int:
        stale = time.monotonic() - device.names_at > self.settings.names_refresh
        if refresh or device.names is None or stale:
            await self._load_names(session, device)
            device.uplink = self._find_uplink(device, session.params.interface)
        if device.uplink is None:
            raise ProbeFailure("interface_not_found", f"no interface matches {session.params.interface}")
        return device.uplink

    # -- the probe ----------------------------------------------------------------------------

    async def probe(self, target_id: str, params: StrictModel, timeout: float) -> ProbeResult:
        assert isinstance(params, SnmpParams)
        try:
            async with asyncio.timeout(timeout):
                session = await self._session(target_id, params)
                return await self._probe(session, self._devices.setdefault(target_id, _Device()))
        except TimeoutError:
            return ProbeResult(False, "snmp_timeout", detail=f"no complete answer within {timeout:g}s")
        except ProbeFailure as failure:
            return ProbeResult(False, failure.reason, detail=failure.detail)

    async def _probe(self, session: _Session, device: _Device) -> ProbeResult:
        for attempt in range(2):  # a second pass after a reboot or a vanished uplink, with fresh names
            uplink = await self._uplink(session, device, refresh=attempt > 0)
            if self.settings.all_interfaces:
                heads, found = await self._walk(session, [c for c, _ in COLUMNS.values()],
                                                len(device.names or {}) + 1, [SYS_UPTIME[:-1]])
                if not heads or tuple(heads[0][0]) != SYS_UPTIME:
                    raise ProbeFailure("snmp_no_such_object", "sysUpTime.0")
                uptime = heads[0][1]
                rows = [_Row(i, {k: found[c].get(i) for k, (c, _) in COLUMNS.items()})
                        for i in sorted(found[COLUMNS["oper"][0]])]
                if uplink not in {r.index for r in rows}:
                    rows.append(_Row(uplink, dict.fromkeys(COLUMNS, rfc1905.noSuchInstance)))
            else:
                values = await self._get(session, [SYS_UPTIME, *[(*c, uplink) for c, _ in COLUMNS.values()]])
                uptime = values[0]
                rows = [_Row(uplink, dict(zip(COLUMNS, values[1:], strict=True)))]
            if uptime.tagSet != rfc1902.TimeTicks.tagSet:
                raise _value_error("sysUpTime.0", uptime)
            rebooted = self._note_uptime(device, int(uptime), session.reboot_slack)
            uplink_row = next(r for r in rows if r.index == uplink)
            vanished = all(v is None or v.tagSet == rfc1905.NoSuchInstance.tagSet for v in uplink_row.values.values())
            if attempt == 0 and (rebooted or vanished):
                continue
            return self._result(device, uplink, rows, int(uptime))
        raise AssertionError("unreachable")

    def _note_uptime(self, device: _Device, ticks: int, slack: float = REBOOT_SLACK) -> bool:
        """Record sysUpTime; True if the device rebooted since the last probe.

        The boot time implied by sysUpTime (now − uptime) stays put while the device runs; a reboot
        moves it forward. Compared probe to probe, so the drift between the device's clock and
        ours never adds up to a false reboot; latency (≤ timeout × tries) stays under the slack.
        """
        boot = time.monotonic() - ticks / 100.0
        rebooted = False
        if device.boot is not None and boot > device.boot + slack:
            wrapped = abs(boot - device.boot - _UPTIME_WRAP / 100.0) < slack
            if not wrapped:
                rebooted = True
                device.reboots += 1
                device.names = None
                device.last.clear()
        device.boot, device.ticks = boot, ticks
        return rebooted

    def _result(self, device: _Device, uplink: int, rows: list[_Row], ticks: int) -> ProbeResult:
        samples = [Sample("snmp_uptime_seconds", ticks / 100.0), Sample("snmp_reboots", float(device.reboots))]
        up, reason = True, ""
        for row in rows:
            role = "uplink" if row.index == uplink else "other"
            values: dict[str, int] = {}
            for key, (_, tag) in COLUMNS.items():
                value = row.values.get(key)
                if value is None or value.tagSet != tag:
                    if role == "uplink":
                        raise _value_error(f"uplink {key} (ifIndex {row.index})",
                                           value if value is not None else rfc1905.noSuchInstance)
                    break  # another interface lacking a column: leave it out, it does not decide up
                values[key] = int(value)
            else:
                samples += self._interface_samples(device, row.index, role, values, ticks)
                if role == "uplink" and values["oper"] != 1:
                    up, reason = False, "uplink_admin_down" if values["admin"] == 2 else "uplink_down"
        return ProbeResult(up, reason, samples)

    def _interface_samples(self, device: _Device, index: int, role: str, v: dict[str, int],
                           ticks: int) -> list[Sample]:
        labels = (str(index), role)
        speed = v["speed"] * 1_000_000.0
        name = (device.names or {}).get(index, ("", "", ""))
        out = [
            Sample("snmp_if_info", 1.0, (*labels, safe_label(name[0] or name[2]))),
            Sample("snmp_if_oper_status", float(v["oper"]), labels),
            Sample("snmp_if_admin_status", float(v["admin"]), labels),
            Sample("snmp_if_in_octets", float(v["in_octets"]), labels),
            Sample("snmp_if_out_octets", float(v["out_octets"]), labels),
            Sample("snmp_if_in_errors", float(v["in_errors"]), labels),
            Sample("snmp_if_out_errors", float(v["out_errors"]), labels),
            Sample("snmp_if_speed_bytes_per_second", speed / 8, labels),
        ]
        previous = device.last.get(index)
        device.last[index] = (ticks, v["in_octets"], v["out_octets"])
        if previous is not None and speed > 0:
            seconds = ((ticks - previous[0]) % _UPTIME_WRAP) / 100.0
            if seconds >= 1.0:
                for direction, now_octets, then_octets in (("in", v["in_octets"], previous[1]),
                                                           ("out", v["out_octets"], previous[2])):
                    if now_octets >= then_octets:  # a counter reset gives no figure rather than a wrong one
                        ratio = (now_octets - then_octets) * 8 / (speed * seconds)
                        out.append(Sample("snmp_if_utilisation_ratio", ratio, (*labels, direction)))
        return out
