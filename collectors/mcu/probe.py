"""The video-conference MCU (bộ điều khiển đa điểm): conferences, ports, registrations, meetings held.

MCUs expose their state in vendor-specific ways, so the collector reads the same few quantities
through one of two adapters, chosen by the target's ``adapter``:

* ``snmp``: one GET of the configured OIDs (SNMPv2c community or SNMPv3 authPriv, through the
  ``collectors.snmp.client.SnmpClient`` the snmp and power collectors use), and a GETBULK walk of a
  table column for the ids of the registered endpoints. There is no standard MCU MIB: the OIDs come
  from the vendor's.
* ``http``: a GET of a JSON status API (``url``, basic or bearer credentials as secret
  references), with a JSON pointer (``/a/b/0``), dotted path (``a.b.0``, ``*`` over a list) or
  JSONPath (``$.a.b[0]``) per quantity, through ``collectors.httpjson`` (httpx and jsonpath-ng, as
  the application sources). The built-in profile ``jitsi_videobridge`` maps Jitsi Videobridge's ``/colibri/stats``
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
import math
import time
from dataclasses import dataclass
from typing import Any

from pysnmp.proto import rfc1902, rfc1905

from agent.domain.secrets import SecretValue
from collectors.api import Collector, Family, ProbeFailure, ProbeResult, Sample
from collectors.http.models import BasicAuth, BearerAuth
from collectors.httpjson import HttpJsonError, JsonClient, JsonField
from collectors.mcu.models import MAX_ENDPOINTS, McuParams, McuSettings
from collectors.snmp.client import Session, SnmpClient
from collectors.snmp.drops import DROPPED_REPLIES

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
_REPETITIONS = 25  # GETBULK max-repetitions of the endpoints walk


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


# --- what is read -----------------------------------------------------------------------------------


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


class _Auth:
    """The MCU's basic or bearer credentials as collectors.httpjson takes them."""

    def __init__(self, auth: BasicAuth | BearerAuth) -> None:
        self._auth = auth

    def for_httpx(self, headers: dict[str, str]) -> Any:
        if isinstance(self._auth, BearerAuth):
            headers["Authorization"] = "Bearer " + self._auth.token.reveal()
            return None
        import httpx

        return httpx.BasicAuth(self._auth.username, self._auth.password.reveal())

    def secrets(self) -> list[SecretValue]:
        return [self._auth.token] if isinstance(self._auth, BearerAuth) else [self._auth.password]


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
        self._clients: dict[str, tuple[McuParams, JsonClient]] = {}
        self._fields: dict[str, JsonField] = {}  # a field path -> its compiled form
        self.snmp = SnmpClient(_REPETITIONS, settings.snmp_timeout, 1)

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
        await self.snmp.close()

    # -- http -----------------------------------------------------------------------------------

    def _client(self, target_id: str, params: McuParams) -> JsonClient:
        known = self._clients.get(target_id)
        if known is not None and known[0] == params:
            return known[1]
        if known is not None:
            asyncio.get_running_loop().create_task(known[1].aclose())
        client = JsonClient(headers={"User-Agent": self.settings.user_agent},
                            auth=_Auth(params.auth) if params.auth is not None else None,
                            ca_file=str(params.ca_bundle) if params.ca_bundle else None, tls_verify=params.tls_verify,
                            max_bytes=params.max_body_bytes, peer="the MCU")
        self._clients[target_id] = (params, client)
        return client

    def _field(self, path: str) -> JsonField:
        field = self._fields.get(path)
        if field is None:
            field = self._fields[path] = JsonField(path)
        return field

    async def _read_http(self, target_id: str, params: McuParams) -> _Reading:
        assert params.url is not None
        try:
            document = await self._client(target_id, params).get(params.url)
        except HttpJsonError as exc:
            if exc.reason == "timeout":
                raise TimeoutError from None
            raise ProbeFailure(exc.reason, exc.message) from None
        values: dict[str, float] = {}
        ids: list[str] | None = None
        for quantity, path in params.quantities().items():
            try:
                found = self._field(path).value(document)
            except HttpJsonError as exc:
                raise ProbeFailure(exc.reason, f"{path}: {exc.message}") from None
            if quantity == "endpoint_ids":
                ids = _ids(found, path)
            else:
                values[quantity] = _number(found, path)
        return _Reading(values, ids)

    # -- snmp ----------------------------------------------------------------------------------

    def self_samples(self) -> list[Sample]:
        return self.snmp.dropped_samples()

    async def _read_snmp(self, target_id: str, params: McuParams, timeout: float) -> _Reading:
        per_try = min(self.settings.snmp_timeout, max(0.1, timeout / (params.retries + 1)))
        session = await self.snmp.session(target_id, params, per_try, params.retries)
        scalars = {q: oid for q, oid in params.oids.items() if q != "endpoint_ids"}
        values: dict[str, float] = {}
        if scalars:
            answered = await self.snmp.get(session, list(scalars.values()))
            for (quantity, oid), value in zip(scalars.items(), answered, strict=True):
                what = f"{quantity} ({'.'.join(map(str, oid))})"
                if value.tagSet in _MISSING:
                    raise ProbeFailure("snmp_no_such_object", what)
                if value.tagSet not in _NUMERIC:
                    raise ProbeFailure("snmp_wrong_type", f"{what}: got {type(value).__name__}")
                values[quantity] = float(int(value))
        ids = None
        column = params.oids.get("endpoint_ids")
        if column is not None:
            ids = await self._walk_ids(session, column)
        return _Reading(values, ids)

    async def _walk_ids(self, session: Session, column: tuple[int, ...]) -> list[str]:
        """A GETBULK walk of one table column of endpoint ids (OctetString), bounded by MAX_ENDPOINTS."""
        _, found = await self.snmp.walk(session, [column], _REPETITIONS, rounds=MAX_ENDPOINTS // _REPETITIONS + 2,
                                        nested=True)
        rows = found[column]
        if len(rows) > MAX_ENDPOINTS:
            raise ProbeFailure("snmp_error", f"more than {MAX_ENDPOINTS} endpoint ids")
        ids: list[str] = []
        for value in rows.values():
            if value.tagSet != rfc1902.OctetString.tagSet:
                raise ProbeFailure("snmp_wrong_type", f"endpoint_ids: got {type(value).__name__}")
            ids.append(bytes(value).decode("utf-8", "replace"))
        return ids
