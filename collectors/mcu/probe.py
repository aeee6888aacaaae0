"""The video-conference MCU (bộ điều khiển đa điểm): conferences, ports, registrations, meetings held.

MCUs expose their state in vendor-specific ways, so the collector reads the same few quantities
through one of two adapters, chosen by the target's ``adapter``:

* ``snmp``: one GET of the configured OIDs (pysnmp's asyncio engine, SNMPv2c community or SNMPv3
  authPriv as in ``collectors/snmp.py``), and a GETNEXT walk of a table column for the ids of the
  registered endpoints. There is no standard MCU MIB: the OIDs come from the vendor's.
* ``http``: a GET of a JSON status API (``url``, basic or bearer credentials as secret
  references), with a JSON pointer (``/a/b/0``) or dotted path (``a.b.0``, ``*`` over a list) per
  quantity. The built-in profile ``jitsi_videobridge`` maps Jitsi Videobridge's ``/colibri/stats``
  (``conferences``, ``participants``, ``largest_conference``, ``total_conferences_created``).

Quantities: ``active_conferences``, ``ports_in_use``, ``ports_total``, ``registered_endpoints``,
``largest_conference`` (gauges), ``meetings_held`` (the MCU's counter of conferences held) and
``endpoint_ids`` (who is registered). The MCU is up when it answered and every configured quantity
was read; a reason names what failed (``timeout``, ``refused``, ``http_status``, ``auth_error``,
``bad_response``, ``missing_field``, ``wrong_type``, ``snmp_no_such_object``...).

``meetings_held`` is exported as a counter that survives the MCU's restarts: the MCU's own counter
restarts from zero when it reboots, so the agent adds up its increases (a value below the last one
counts as a restart, whose meetings since are the new value) and counts the restarts. Endpoint ids
are device text: they become labels only for the ids the configuration lists in
``expected_endpoints`` (registered 1, missing 0); others are only counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pysnmp.hlapi.v3arch import asyncio as v3arch
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.rfc1902 import ObjectName

from collectors.api import Collector, Family, ProbeFailure, ProbeResult, Sample
from collectors.http.models import BasicAuth, BearerAuth
from collectors.mcu.models import MAX_ENDPOINTS, McuParams, McuSettings
from collectors.snmp.drops import DROP_REASONS, DROPPED_REPLIES, dropped_samples
from collectors.snmp.replies import matching_engine

GAUGES = {
    "active_conferences": "mcu_active_conferences",
    "ports_in_use": "mcu_ports_in_use",
    "ports_total": "mcu_ports_capacity",
    "registered_endpoints": "mcu_registered_endpoints",
    "largest_conference": "mcu_largest_conference_participants",
}
_NUMERIC = (rfc1902.Integer32.tagSet, rfc1902.Gauge32.tagSet, rfc1902.Counter32.tagSet,
            rfc1902.Counter64.tagSet, rfc1902.Unsigned32.tagSet, rfc1902.TimeTicks.tagSet)
_MISSING = (rfc1905.NoSuchObject.tagSet, rfc1905.NoSuchInstance.tagSet, rfc1905.EndOfMibView.tagSet)
_AUTH_PROTOCOLS = {"sha": v3arch.USM_AUTH_HMAC96_SHA, "sha224": v3arch.USM_AUTH_HMAC128_SHA224,
                   "sha256": v3arch.USM_AUTH_HMAC192_SHA256, "sha384": v3arch.USM_AUTH_HMAC256_SHA384,
                   "sha512": v3arch.USM_AUTH_HMAC384_SHA512}
_PRIV_PROTOCOLS = {"aes": v3arch.USM_PRIV_CFB128_AES, "aes192": v3arch.USM_PRIV_CFB192_AES,
                   "aes256": v3arch.USM_PRIV_CFB256_AES}
_AUTH_ERRORS = (errind.WrongDigest, errind.UnknownUserName, errind.DecryptionError, errind.AuthenticationError,
                errind.AuthenticationFailure, errind.UnsupportedSecurityLevel, errind.UnknownSecurityName,
                errind.NotInTimeWindow, errind.UnknownCommunityName)


@dataclass
class _Counter:
    """The MCU's meetings counter made monotonic across its restarts."""

    last: float | None = None
    total: float = 0.0
    resets: int = 0

    def update(self, raw: float) -> None:
        if self.last is None:
            self.total = raw
        elif raw >= self.last:
            self.total += raw - self.last
        else:  # the MCU restarted: its counter began again from zero
            self.total += raw
            self.resets += 1
        self.last = raw


@dataclass
class _Reading:
    values: dict[str, float]
    endpoint_ids: list[str] | None = None


# --- JSON field paths -------------------------------------------------------------------------------


def resolve_path(body: Any, path: str) -> Any:
    """The value at a JSON pointer (RFC 6901) or dotted path; ``*`` in a dotted path maps over a list."""
    if path.startswith("/"):
        node = body
        for raw in path[1:].split("/"):
            key = raw.replace("~1", "/").replace("~0", "~")
            node = _step(node, key, path)
        return node
    nodes: list[Any] = [body]
    spread = False
    for key in path.split("."):
        if key == "*":
            spread = True
            out = []
            for node in nodes:
                if not isinstance(node, list):
                    raise ProbeFailure("wrong_type", f"{path}: '*' needs a list")
                out.extend(node)
            nodes = out
        else:
            nodes = [_step(node, key, path) for node in nodes]
    return nodes if spread else nodes[0]


def _step(node: Any, key: str, path: str) -> Any:
    if isinstance(node, dict):
        if key not in node:
            raise ProbeFailure("missing_field", f"{path}: no {key!r}")
        return node[key]
    if isinstance(node, list) and key.isdigit():
        if int(key) >= len(node):
            raise ProbeFailure("missing_field", f"{path}: index {key} past the list's end")
        return node[int(key)]
    raise ProbeFailure("missing_field" if node is None else "wrong_type", f"{path}: cannot take {key!r}")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ProbeFailure("wrong_type", f"{what}: expected a number, got {type(value).__name__}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ProbeFailure("wrong_type", f"{what}: expected a number, got text") from None
    else:
        raise ProbeFailure("wrong_type", f"{what}: expected a number, got {type(value).__name__}")
    if not math.isfinite(number) or number < 0:
        raise ProbeFailure("wrong_type", f"{what}: expected a non-negative number")
    return number


def _ids(value: Any, what: str) -> list[str]:
    if not isinstance(value, list):
        raise ProbeFailure("wrong_type", f"{what}: expected a list of endpoint ids")
    if len(value) > MAX_ENDPOINTS:
        raise ProbeFailure("wrong_type", f"{what}: more than {MAX_ENDPOINTS} endpoints")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ProbeFailure("wrong_type", f"{what}: an endpoint id is text or a number")
        out.append(str(item))
    return out


# --- the collector ------------------------------------------------------------------------------------


class McuCollector(Collector[McuParams, McuSettings]):
    kind = "mcu"
    Params = McuParams
    Settings = McuSettings
    families = (
        Family("mcu_active_conferences", "gauge", "Conferences in progress on the MCU."),
        Family("mcu_ports_in_use", "gauge", "MCU ports (participants) in use."),
        Family("mcu_ports_capacity", "gauge", "MCU ports licensed or available in all."),
        Family("mcu_port_utilisation_ratio", "gauge", "Ports in use / ports in all."),
        Family("mcu_registered_endpoints", "gauge", "Endpoints registered on the MCU."),
        Family("mcu_largest_conference_participants", "gauge", "Participants of the largest conference in progress."),
        Family("mcu_meetings_held", "counter",
               "Conferences held on the MCU, from its counter, added up across the MCU's restarts."),
        Family("mcu_meetings_held_resets", "counter", "Times the MCU's meetings counter went back (an MCU restart)."),
        Family("mcu_endpoint_registered", "gauge",
               "1 if the MCU lists this expected endpoint as registered, 0 if not.", ("endpoint",)),
        Family("mcu_unexpected_endpoints", "gauge", "Registered endpoints not in expected_endpoints."),
        Family("mcu_response_seconds", "gauge", "Time the MCU took to answer the probe."),
    )
    self_families = (DROPPED_REPLIES,)

    def __init__(self, settings: McuSettings) -> None:
        super().__init__(settings)
        self._counters: dict[str, tuple[McuParams, _Counter]] = {}
        self._clients: dict[str, tuple[McuParams, httpx.AsyncClient]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: v3arch.SnmpEngine | None = None
        self.dropped_replies: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._targets: dict[str, tuple[McuParams, Any, Any]] = {}  # target id -> (params, auth, transport)

    async def probe(self, target_id: str, params: McuParams, timeout: float) -> ProbeResult:
        started = time.perf_counter()
        if params.adapter == "snmp":
            reading = await self._read_snmp(target_id, params, timeout)
        else:
            reading = await self._read_http(target_id, params)
        return ProbeResult(True, "", self._samples(target_id, params, reading, time.perf_counter() - started))

    def failure_samples(self, target_id: str, params: McuParams) -> list[Sample]:
        """The meetings counted so far, exported on through a failed probe: a bad answer must not lose them."""
        known = self._counters.get(target_id)
        if known is None or known[0] != params:
            return []
        return [Sample("mcu_meetings_held", known[1].total), Sample("mcu_meetings_held_resets", float(known[1].resets))]

    def _samples(self, target_id: str, params: McuParams, reading: _Reading, seconds: float) -> list[Sample]:
        values = reading.values
        samples = [Sample(GAUGES[k], v) for k, v in values.items() if k in GAUGES]
        if "ports_in_use" in values and values.get("ports_total"):
            samples.append(Sample("mcu_port_utilisation_ratio", values["ports_in_use"] / values["ports_total"]))
        if "meetings_held" in values:
            known = self._counters.get(target_id)
            counter = known[1] if known is not None and known[0] == params else _Counter()
            counter.update(values["meetings_held"])
            self._counters[target_id] = (params, counter)
            samples += [Sample("mcu_meetings_held", counter.total),
                        Sample("mcu_meetings_held_resets", float(counter.resets))]
        if reading.endpoint_ids is not None:
            registered = set(reading.endpoint_ids)
            expected = set(params.expected_endpoints)
            samples += [Sample("mcu_endpoint_registered", 1.0 if e in registered else 0.0, (e,))
                        for e in params.expected_endpoints]
            samples.append(Sample("mcu_unexpected_endpoints", float(len(registered - expected))))
            if "registered_endpoints" not in values:
                samples.append(Sample("mcu_registered_endpoints", float(len(registered))))
        samples.append(Sample("mcu_response_seconds", seconds))
        return samples

    async def close(self) -> None:
        for _, client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()
        self._close_engine()

    # -- http -----------------------------------------------------------------------------------

    def _client(self, target_id: str, params: McuParams) -> httpx.AsyncClient:
        known = self._clients.get(target_id)
        if known is not None and known[0] == params:
            return known[1]
        if known is not None:
            asyncio.get_running_loop().create_task(known[1].aclose())
        headers = {"Accept": "application/json", "User-Agent": self.settings.user_agent}
        auth: Any = None
        if isinstance(params.auth, BasicAuth):
            auth = httpx.BasicAuth(params.auth.username, params.auth.password.reveal())
        elif isinstance(params.auth, BearerAuth):
            headers["Authorization"] = "Bearer " + params.auth.token.reveal()
        verify: Any = str(params.ca_bundle) if params.ca_bundle else params.tls_verify
        client = httpx.AsyncClient(headers=headers, auth=auth, verify=verify, follow_redirects=False,
                                   trust_env=False, timeout=None)
        self._clients[target_id] = (params, client)
        return client

    async def _read_http(self, target_id: str, params: McuParams) -> _Reading:
        assert params.url is not None
        client = self._client(target_id, params)
        body = bytearray()
        try:
            async with client.stream("GET", params.url) as response:
                if response.status_code in (401, 403):
                    raise ProbeFailure("auth_error", f"HTTP {response.status_code}: the MCU refused the credentials")
                if not 200 <= response.status_code < 300:
                    raise ProbeFailure("http_status", f"HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > params.max_body_bytes:
                        raise ProbeFailure("bad_response", f"body larger than {params.max_body_bytes} bytes")
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise ProbeFailure(_http_reason(exc), f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                             if str(exc) else type(exc).__name__) from None
        try:
            document = json.loads(bytes(body))
        except RecursionError:  # the C decoder recurses once per level: "[[[[..." a million deep
            raise ProbeFailure("bad_response", "the body is JSON nested too deep to read") from None
        except ValueError as exc:  # not UTF-8, not JSON, or an integer of more digits than Python converts
            raise ProbeFailure("bad_response", f"the body is not JSON: {exc.__class__.__name__}") from None
        values: dict[str, float] = {}
        ids: list[str] | None = None
        for quantity, path in params.quantities().items():
            found = resolve_path(document, path)
            if quantity == "endpoint_ids":
                ids = _ids(found, path)
            else:
                values[quantity] = _number(found, path)
        return _Reading(values, ids)

    # -- snmp -----------------------------------------------------------------------------------

    def _bind_loop(self) -> v3arch.SnmpEngine:
        """pysnmp binds its socket to the loop that opened it; a new loop (a test's) gets a new engine."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._close_engine()
            self._loop = loop
        if self._engine is None:
            self._engine = matching_engine(self._note_dropped)
        return self._engine

    def _note_dropped(self, reason: str, source: tuple[str, int]) -> None:
        self.dropped_replies[reason] += 1

    def self_samples(self) -> list[Sample]:
        return dropped_samples(self.dropped_replies)

    def _close_engine(self) -> None:
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.close_dispatcher()
        self._engine = None
        self._targets.clear()

    async def _snmp_target(self, target_id: str, params: McuParams, timeout: float) -> tuple[Any, Any]:
        known = self._targets.get(target_id)
        if known is not None and known[0] == params:
            return known[1], known[2]
        host = str(params.host)
        cls = v3arch.Udp6TransportTarget if ":" in host else v3arch.UdpTransportTarget
        per_try = min(self.settings.snmp_timeout, max(0.1, timeout / (params.retries + 1)))
        transport = await cls.create((host, params.port), timeout=per_try, retries=params.retries)
        if params.v3 is not None:
            v3 = params.v3
            auth: Any = v3arch.UsmUserData(v3.user, authKey=v3.auth_key.reveal(), privKey=v3.priv_key.reveal(),
                                           authProtocol=_AUTH_PROTOCOLS[v3.auth_protocol],
                                           privProtocol=_PRIV_PROTOCOLS[v3.priv_protocol])
        else:
            assert params.community is not None
            auth = v3arch.CommunityData(params.community.reveal(), mpModel=1)
        self._targets[target_id] = (params, auth, transport)
        return auth, transport

    async def _snmp(self, command: Any, auth: Any, transport: Any, oids: list[tuple[int, ...]]) -> list[Any]:
        engine = self._bind_loop()
        varbinds = [(ObjectName(oid), rfc1902.Null()) for oid in oids]
        try:
            indication, status, index, answered = await command(engine, auth, transport, v3arch.ContextData(),
                                                                *varbinds, lookupMib=False)
        except Exception as exc:  # pysnmp raises for answers it cannot make sense of
            raise ProbeFailure("snmp_error", type(exc).__name__) from None
        if indication:
            if isinstance(indication, errind.RequestTimedOut):
                raise ProbeFailure("timeout", str(indication))
            if isinstance(indication, _AUTH_ERRORS):
                raise ProbeFailure("snmp_auth_error", type(indication).__name__)
            raise ProbeFailure("snmp_error", type(indication).__name__)
        if status and int(status) != 0:
            reason = "snmp_auth_error" if int(status) == 16 else "snmp_error"
            raise ProbeFailure(reason, f"error-status {int(status)} at varbind {index}")
        return list(answered)

    async def _read_snmp(self, target_id: str, params: McuParams, timeout: float) -> _Reading:
        # The engine is bound to the running loop first: a new loop drops the cached transports.
        self._bind_loop()
        auth, transport = await self._snmp_target(target_id, params, timeout)
        scalars = {q: oid for q, oid in params.oids.items() if q != "endpoint_ids"}
        values: dict[str, float] = {}
        if scalars:
            answered = await self._snmp(v3arch.get_cmd, auth, transport, list(scalars.values()))
            if len(answered) != len(scalars):
                raise ProbeFailure("snmp_error", f"{len(answered)} varbinds in the answer to a GET of {len(scalars)}")
            for (quantity, oid), (name, value) in zip(scalars.items(), answered, strict=True):
                what = f"{quantity} ({'.'.join(map(str, oid))})"
                if tuple(name) != oid:
                    raise ProbeFailure("snmp_error", f"{what}: the answer names {tuple(name)}")
                if value.tagSet in _MISSING:
                    raise ProbeFailure("snmp_no_such_object", what)
                if value.tagSet not in _NUMERIC:
                    raise ProbeFailure("snmp_wrong_type", f"{what}: got {type(value).__name__}")
                values[quantity] = float(int(value))
        ids = None
        column = params.oids.get("endpoint_ids")
        if column is not None:
            ids = await self._walk_ids(auth, transport, column)
        return _Reading(values, ids)

    async def _walk_ids(self, auth: Any, transport: Any, column: tuple[int, ...]) -> list[str]:
        """GETNEXT down one table column of endpoint ids (OctetString), bounded by MAX_ENDPOINTS."""
        ids: list[str] = []
        cursor = column
        for _ in range(MAX_ENDPOINTS + 1):
            ((name, value),) = await self._snmp(v3arch.next_cmd, auth, transport, [cursor])
            oid = tuple(name)
            if value.tagSet in _MISSING or oid[:len(column)] != column:
                return ids
            if oid <= cursor:
                raise ProbeFailure("snmp_error", "OIDs not increasing in the walk of endpoint_ids")
            if value.tagSet != rfc1902.OctetString.tagSet:
                raise ProbeFailure("snmp_wrong_type", f"endpoint_ids: got {type(value).__name__}")
            ids.append(bytes(value).decode("utf-8", "replace"))
            cursor = oid
        raise ProbeFailure("snmp_error", f"more than {MAX_ENDPOINTS} endpoint ids")


def _http_reason(exc: httpx.HTTPError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "SSL" in text or "CERTIFICATE" in text.upper():
        return "tls_error"
    if isinstance(exc, httpx.ConnectError):
        return "refused" if "refused" in text.lower() else "connect_error"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "bad_response"
    return "http_error"
