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
that device's alone and has a fixed reason: ``timeout`` (no answer: also what a wrong v2c
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

The SNMP itself (sessions, the v2c fast path and pysnmp's v3 engine, GET, GETBULK walks, the reply
matching and what it drops, the error -> reason map) is ``collectors.snmp.client.SnmpClient``, which
the power and mcu collectors use as well: one UDP socket per address family serves every v2c device,
so thousands of concurrent probes cost one file descriptor and no per-device engine state. SNMPv3
keys are per user name: devices sharing a v3 user must share its keys (pysnmp's USM keeps one entry
per user). What the client drops is counted in ``egov_snmp_replies_dropped_total`` by reason. An
undecodable answer (v2c or v3), or a v2c one with another community, from the device's own address
makes the probe ``snmp_malformed`` if no good answer follows. A v3 answer that decodes
but fails authentication or decryption still reads as ``timeout``: USM drops it unattributed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from pysnmp.proto import rfc1902, rfc1905

from collectors.api import Collector, Family, ProbeFailure, ProbeResult, Sample
from collectors.snmp.client import Session, SnmpClient
from collectors.snmp.client import value_error as _value_error
from collectors.snmp.drops import DROPPED_REPLIES
from collectors.snmp.models import InterfaceSelector, SnmpParams, SnmpSettings

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
_UPTIME_WRAP = 2**32  # sysUpTime is a 32-bit count of centiseconds: it wraps after 497 days
REBOOT_SLACK = 5.0  # seconds of disagreement between clocks tolerated before calling it a reboot
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._:/+-]")


@dataclass
class _Device:
    """What the collector remembers of one router between probes."""

    params: SnmpParams = field(repr=False)  # the configuration it was learnt under
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




def safe_label(text: str) -> str:
    """An interface name fit for a label: device text, so only a short run of safe characters."""
    return _SAFE_NAME.sub("_", text)[:64]


class SnmpCollector(Collector[SnmpParams, SnmpSettings]):
    kind = "snmp"
    Params = SnmpParams
    Settings = SnmpSettings
    families = (
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

    def __init__(self, settings: SnmpSettings) -> None:
        super().__init__(settings)
        self.snmp = SnmpClient(settings.max_repetitions, settings.timeout, settings.retries)
        self._devices: dict[str, _Device] = {}

    def self_samples(self) -> list[Sample]:
        return self.snmp.dropped_samples()

    async def close(self) -> None:
        await self.snmp.close()

    def _device(self, target_id: str, params: SnmpParams) -> _Device:
        """What is known of the router; forgotten when the target's configuration changed."""
        device = self._devices.get(target_id)
        if device is None or (device.params is not params and device.params != params):
            device = self._devices[target_id] = _Device(params)
        return device

    # -- interfaces ---------------------------------------------------------------------------

    async def _load_names(self, session: Session, device: _Device) -> None:
        # ifNumber sizes the GETBULK: a router with 4 interfaces gets 3 × 5 varbinds, not 3 × 25.
        (count,) = await self.snmp.get(session, [IF_NUMBER])
        sized = count.tagSet == _INTEGER and 0 <= int(count) < 10_000
        hint = int(count) + 1 if sized else self.settings.max_repetitions
        _, found = await self.snmp.walk(session, [IF_DESCR, IF_NAME, IF_ALIAS], hint)
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

    async def _uplink(self, session: Session, device: _Device, refresh: bool = False) -> int:
        stale = time.monotonic() - device.names_at > self.settings.names_refresh
        if refresh or device.names is None or stale:
            await self._load_names(session, device)
            device.uplink = self._find_uplink(device, device.params.interface)
        if device.uplink is None:
            raise ProbeFailure("interface_not_found", f"no interface matches {device.params.interface}")
        return device.uplink

    # -- the probe ----------------------------------------------------------------------------

    async def probe(self, target_id: str, params: SnmpParams, timeout: float) -> ProbeResult:
        session = await self.snmp.session(target_id, params, params.timeout, params.retries)
        return await self._probe(session, self._device(target_id, params))

    async def _probe(self, session: Session, device: _Device) -> ProbeResult:
        for attempt in range(2):  # a second pass after a reboot or a vanished uplink, with fresh names
            uplink = await self._uplink(session, device, refresh=attempt > 0)
            if self.settings.all_interfaces:
                heads, found = await self.snmp.walk(session, [c for c, _ in COLUMNS.values()],
                                                len(device.names or {}) + 1, [SYS_UPTIME[:-1]])
                if not heads or tuple(heads[0][0]) != SYS_UPTIME:
                    raise ProbeFailure("snmp_no_such_object", "sysUpTime.0")
                uptime = heads[0][1]
                rows = [_Row(i, {k: found[c].get(i) for k, (c, _) in COLUMNS.items()})
                        for i in sorted(found[COLUMNS["oper"][0]])]
                if uplink not in {r.index for r in rows}:
                    rows.append(_Row(uplink, dict.fromkeys(COLUMNS, rfc1905.noSuchInstance)))
            else:
                values = await self.snmp.get(session, [SYS_UPTIME, *[(*c, uplink) for c, _ in COLUMNS.values()]])
                uptime = values[0]
                rows = [_Row(uplink, dict(zip(COLUMNS, values[1:], strict=True)))]
            if uptime.tagSet != rfc1902.TimeTicks.tagSet:
                raise _value_error("sysUpTime.0", uptime)
            # an answer's latency may shift the boot time by up to every try's timeout
            slack = max(REBOOT_SLACK, session.longest_wait + 1.0)
            rebooted = self._note_uptime(device, int(uptime), slack)
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
