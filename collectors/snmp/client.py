"""One SNMP client for every collector that speaks SNMP (snmp, power, mcu): sessions, GET, GETBULK walks,
the error -> reason map and the replies dropped.

Each collector holds one :class:`SnmpClient` (composition: the collectors differ in what they read, not
in how they ask). v2c goes through the fast path (``collectors.snmp.v2c``: one UDP socket per address
family for every device, requests encoded once per device, answers read by ``collectors.snmp.ber``
without pyasn1 objects, pysnmp only for what that codec refuses); v3 through one pysnmp SnmpEngine,
created at the first v3 device (USM needs it). Both accept an answer only from the address the request
went to, with the request's random id (and, v2c, its community): see ``collectors.snmp.replies``; what
they drop is counted by reason (``dropped``). An undecodable answer, or a v2c one with another
community, from the device's own address makes the request ``snmp_malformed`` if no good answer follows.

Every failure is a :class:`~collectors.api.ProbeFailure` with one of the fixed reasons ``timeout``,
``snmp_auth_error``, ``snmp_no_such_object``, ``snmp_wrong_type``, ``snmp_malformed``, ``snmp_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyasn1.error import PyAsn1Error
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.error import ProtocolError
from pysnmp.proto.rfc1902 import ObjectName

from agent.domain.secrets import SecretValue
from collectors.api import ProbeFailure, Sample
from collectors.snmp import ber as snmp_ber
from collectors.snmp import v2c as snmp_v2c
from collectors.snmp.drops import DROP_REASONS, Address, dropped_samples
from collectors.snmp.models import V3Auth

Oid = tuple[int, ...]
MISSING = (rfc1905.NoSuchObject.tagSet, rfc1905.NoSuchInstance.tagSet)
END = rfc1905.EndOfMibView.tagSet
WALK_ROUNDS = 64  # GETBULK rounds per walk at most: bounds a device that never ends its table
RECEIVE_BUFFER = 4 * 1024 * 1024
_TEMPLATES_PER_DEVICE = 16  # requests kept encoded per device: the probe's GET and a walk's first rounds

# pysnmp's names of the USM protocols (its v3arch engine is imported at the first v3 device only).
_AUTH_PROTOCOLS = {"sha": "USM_AUTH_HMAC96_SHA", "sha224": "USM_AUTH_HMAC128_SHA224",
                   "sha256": "USM_AUTH_HMAC192_SHA256", "sha384": "USM_AUTH_HMAC256_SHA384",
                   "sha512": "USM_AUTH_HMAC384_SHA512"}
_PRIV_PROTOCOLS = {"aes": "USM_PRIV_CFB128_AES", "aes192": "USM_PRIV_CFB192_AES", "aes256": "USM_PRIV_CFB256_AES"}
_AUTH_ERRORS = (errind.WrongDigest, errind.UnknownUserName, errind.DecryptionError, errind.AuthenticationError,
                errind.AuthenticationFailure, errind.UnsupportedSecurityLevel, errind.UnknownSecurityName,
                errind.NotInTimeWindow, errind.UnknownCommunityName)
_MALFORMED = (errind.ParseError, errind.DeserializationError)


class Device(Protocol):
    """What a target's params must say for a session: the snmp, power and mcu params all do."""

    @property
    def host(self) -> Any: ...
    @property
    def port(self) -> int: ...
    @property
    def community(self) -> SecretValue | None: ...
    @property
    def v3(self) -> V3Auth | None: ...


@dataclass
class Session:
    """One device as the client asks it: its address, its credentials, its per-request timeout and retries."""

    params: Device
    # v3: pysnmp's UsmUserData (its repr shows the keys): kept out of this dataclass's repr. v2c: None.
    auth: Any = field(repr=False)
    target: Any = None  # v3: a pysnmp UdpTransportTarget or Udp6TransportTarget
    address: tuple[str, int] = ("", 0)
    timeout: float = 0.0
    retries: int = 0
    community: bytes = field(default=b"", repr=False)  # v2c: as it goes on the wire
    # v2c requests encoded once (oids, GETBULK shape) -> template: only the request id changes per probe
    templates: dict[tuple[tuple[Oid, ...], tuple[int, int] | None], snmp_ber.Template] = field(
        default_factory=dict, repr=False)

    @property
    def longest_wait(self) -> float:
        """Seconds one request may take before it fails: every try's timeout."""
        return self.timeout * (self.retries + 1)


def value_error(what: str, value: Any) -> ProbeFailure:
    """The failure for a value the probe cannot use: missing (noSuch*, endOfMibView) or of the wrong type."""
    if value.tagSet in MISSING or value.tagSet == END:
        return ProbeFailure("snmp_no_such_object", f"{what}: {type(value).__name__}")
    return ProbeFailure("snmp_wrong_type", f"{what}: got {type(value).__name__}")


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


class SnmpClient:
    """The SNMP of one collector: its sessions, its sockets (bound to the running loop), its drop counts."""

    def __init__(self, max_repetitions: int, timeout: float, retries: int) -> None:
        self.max_repetitions = max_repetitions
        self.timeout = timeout  # per request, unless a target says otherwise
        self.retries = retries
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: snmp_v2c.V2cClient | None = None  # v2c: one socket per address family
        self._engine: Any = None  # v3: a pysnmp SnmpEngine, created at the first v3 target
        self._context: Any = None
        self._sessions: dict[str, Session] = {}
        self._malformed: dict[Address, float] = {}  # a device's address -> when it last sent garbage
        self._addresses: set[Address] = set()  # of the devices probed: only their garbage is remembered
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)

    # -- transports ---------------------------------------------------------------------------
    # SNMPv2c goes through the fast path of collectors.snmp.v2c (no SNMP engine, no pyasn1 objects
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

            from collectors.snmp.replies import matching_engine

            self._engine = matching_engine(self._note_dropped)
            self._context = v3arch.ContextData()
            engine_config.add_transport(self._engine, udp.DOMAIN_NAME, _client_transport(socket.AF_INET))
        return self._engine

    def receive_buffer(self) -> int:
        """The v2c socket's receive buffer as the kernel gave it."""
        return self._v2c().receive_buffer()

    def _note_dropped(self, reason: str, source: Address) -> None:
        """A reply was dropped; garbage from a device's own address tells why its request gets no answer."""
        self.dropped[reason] += 1
        if reason in ("malformed", "wrong_community") and source in self._addresses:
            self._malformed[source] = time.monotonic()

    def dropped_samples(self) -> list[Sample]:
        return dropped_samples(self.dropped)

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

    async def session(self, target_id: str, params: Device, timeout: float | None = None,
                      retries: int | None = None) -> Session:
        """The target's session, made again when its params, timeout or retries changed, or on a new loop;
        ``timeout`` and ``retries`` default to the client's."""
        self._bind_loop()
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        session = self._sessions.get(target_id)
        if (session is not None and (session.params is params or session.params == params)  # == costs 14 µs
                and session.timeout == timeout and session.retries == retries):
            return session
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
        session = self._sessions[target_id] = Session(params, auth, target, address, timeout, retries, community)
        self._addresses.add(address)
        return session

    # -- requests -----------------------------------------------------------------------------

    async def request(self, session: Session, oids: list[Oid], bulk: tuple[int, int] | None = None,
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

    async def _request_v2c(self, session: Session, oids: list[Oid], bulk: tuple[int, int] | None,
                           ) -> list[tuple[Any, Any]]:
        """The fast path: the request from its template, the answer read by collectors.snmp.ber."""
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
            raise ProbeFailure("timeout", str(exc)) from None
        if message.error_status != 0:
            status = rfc1905.errorStatus.clone(message.error_status).prettyPrint()
            reason = "snmp_auth_error" if message.error_status == 16 else "snmp_error"  # 16: authorizationError
            raise ProbeFailure(reason, f"error-status {status} at varbind {message.error_index}")
        typed = snmp_v2c.typed
        return [(name, typed(tag, value)) for name, tag, value in message.varbinds]

    def _check(self, session: Session, started: float, error_indication: Any, error_status: Any,
               error_index: Any) -> None:
        if error_indication:
            if isinstance(error_indication, errind.RequestTimedOut):
                if self._malformed.get(session.address, -math.inf) >= started:
                    raise ProbeFailure("snmp_malformed", "the device answered undecodably or with another community")
                raise ProbeFailure("timeout", str(error_indication))
            if isinstance(error_indication, _AUTH_ERRORS):
                raise ProbeFailure("snmp_auth_error", type(error_indication).__name__)
            if isinstance(error_indication, _MALFORMED):
                raise ProbeFailure("snmp_malformed", type(error_indication).__name__)
            raise ProbeFailure("snmp_error", type(error_indication).__name__)
        if error_status and int(error_status) != 0:
            status = error_status.prettyPrint() if hasattr(error_status, "prettyPrint") else str(error_status)
            reason = "snmp_auth_error" if int(error_status) == 16 else "snmp_error"  # 16: authorizationError
            raise ProbeFailure(reason, f"error-status {status} at varbind {error_index}")

    async def get(self, session: Session, oids: list[Oid]) -> list[Any]:
        """The values of ``oids``, in order; an answer naming other objects is ``snmp_error``."""
        varbinds = await self.request(session, oids)
        if len(varbinds) != len(oids):
            raise ProbeFailure("snmp_error", f"{len(varbinds)} varbinds in the answer to a GET of {len(oids)}")
        values = []
        for oid, (name, value) in zip(oids, varbinds, strict=True):
            if tuple(name) != oid:
                raise ProbeFailure("snmp_error", f"asked {oid}, answer names {tuple(name)}")
            values.append(value)
        return values

    async def walk(self, session: Session, columns: list[Oid], repetitions: int, first: list[Oid] | None = None,
                   rounds: int = WALK_ROUNDS, nested: bool = False) -> tuple[list[Any], dict[Oid, dict[Any, Any]]]:
        """GETBULK walk of table columns side by side; ``first`` are non-repeaters asked in round one
        (GETNEXT semantics: ask sysUpTime as 1.3.6.1.2.1.1.3 to get sysUpTime.0).

        Rows are keyed by their index ``i`` (``column.i``; rows of longer indexes are skipped), or with
        ``nested`` by the whole index after the column, as a tuple (an MCU's table of endpoints)."""
        found: dict[Oid, dict[Any, Any]] = {c: {} for c in columns}
        cursor = {c: c for c in columns}
        active = list(columns)
        heads: list[Any] = []
        first = list(first or [])
        repetitions = max(1, min(repetitions, self.max_repetitions))
        for _ in range(rounds):
            asked = first + [cursor[c] for c in active]
            varbinds = await self.request(session, asked, (len(first), repetitions))
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
                    if value.tagSet == END or oid[:len(column)] != column:
                        done.add(column)
                        continue
                    if oid <= cursor[column]:
                        raise ProbeFailure("snmp_error", f"OIDs not increasing in the walk of {column}")
                    cursor[column] = oid
                    if nested:
                        found[column][oid[len(column):]] = value
                    elif len(oid) == len(column) + 1:
                        found[column][oid[-1]] = value
            active = [c for c in active if c not in done]
            if not active:
                return heads, found
        raise ProbeFailure("snmp_error", f"walk longer than {rounds} GETBULK rounds")
