"""Simulated THDL power devices for ``power`` targets: one SNMPv2c agent per device on its loopback address.

Each lab device answers the objects of every profile the power collector knows, so a province's UPS,
PDU and sensor targets all find theirs: the UPS-MIB (RFC 1628) battery, input and output groups;
Eaton's XUPS-MIB battery, input, output and ambient temperature; APC PowerNet's rPDU load table
(a phase total and two banks), eight outlets and device power; GEIST-V4-MIB's internal sensor
(temperature and humidity, in °C). No recording of an RFC 1628 UPS ships with snmpsim-data, so the
lab generates one; the Eaton, APC and Geist profiles are tested against real recordings.

The protocol side is ``agent.lab.snmp``'s responder (pysnmp's codec, one UDP socket per device);
this module supplies the MIB and the states:

* ``online``: on mains, battery full, 40-odd minutes of runtime at the device's load;
* ``on_battery``: mains lost (input 0 V), output source battery(5), upsSecondsOnBattery counting
  from the change, 72 % charge and 25 minutes left;
* ``low_battery``: still on battery, upsBatteryStatus batteryLow(3), 18 % and 4 minutes left;
* ``hot``: on mains, but the room is at 31.5 °C (the cooling failed);
* ``down``: no answer at all.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from pysnmp.proto import rfc1902

from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers
from collectors.snmp.lab import SCALARS, Getter, MibTable, Router, SnmpSimulator

STATES = ("online", "on_battery", "low_battery", "hot", "down")
ROOM_CELSIUS, HOT_CELSIUS = 23.5, 31.5
_UPS = (1, 3, 6, 1, 2, 1, 33, 1)
_XUPS = (1, 3, 6, 1, 4, 1, 534, 1)
_APC = (1, 3, 6, 1, 4, 1, 318, 1, 1)
_GEIST = (1, 3, 6, 1, 4, 1, 21239, 5, 1)
OUTLETS = 8


@dataclass
class PowerDevice(Router):
    """A lab router's socket and state, with a UPS's figures: what it carries decides the rest."""

    load: float = 0.35  # share of the rated power in use
    rated_watts: int = 6000
    runtime_minutes: int = 42  # on mains, at this load

    def on_battery(self) -> bool:
        return self.state in ("on_battery", "low_battery")

    def watts(self) -> int:
        return round(self.rated_watts * self.load)


def _int(value: float) -> rfc1902.Integer:
    return rfc1902.Integer(int(value))


def _fixed(value: int) -> Getter:
    """A getter giving the same INTEGER for every read (a row's phase or bank number)."""
    return lambda r, i, now, s: _int(value)


def _d(getter: Any) -> Getter:
    """A getter on the device alone (every object here but the tables' index)."""
    return lambda r, i, now, s: getter(r, now)


def _charge(d: PowerDevice) -> int:
    return {"on_battery": 72, "low_battery": 18}.get(d.state, 100)


def _minutes(d: PowerDevice) -> int:
    return {"on_battery": 25, "low_battery": 4}.get(d.state, d.runtime_minutes)


def _battery_decivolts(d: PowerDevice) -> int:
    return {"on_battery": 2460, "low_battery": 2220}.get(d.state, 2730)


def _input_volts(d: PowerDevice) -> int:
    return 0 if d.on_battery() else 229


def _celsius(d: PowerDevice) -> float:
    return HOT_CELSIUS if d.state == "hot" else ROOM_CELSIUS


def _output_decamps(d: PowerDevice) -> int:
    return round(d.watts() / 220 * 10)


_DEVICE: list[tuple[tuple[int, ...], Any]] = [
    # UPS-MIB (RFC 1628)
    ((*_UPS, 1, 1, 0), lambda d, now: rfc1902.OctetString("egov-agent lab")),
    ((*_UPS, 1, 2, 0), lambda d, now: rfc1902.OctetString("Lab UPS 6 kVA")),
    ((*_UPS, 2, 1, 0), lambda d, now: _int(3 if d.state == "low_battery" else 2)),
    ((*_UPS, 2, 2, 0), lambda d, now: _int(now - d.changed if d.on_battery() else 0)),
    ((*_UPS, 2, 3, 0), lambda d, now: _int(_minutes(d))),
    ((*_UPS, 2, 4, 0), lambda d, now: _int(_charge(d))),
    ((*_UPS, 2, 5, 0), lambda d, now: _int(_battery_decivolts(d))),
    ((*_UPS, 2, 7, 0), lambda d, now: _int(_celsius(d) + 2)),
    ((*_UPS, 3, 2, 0), lambda d, now: _int(1)),
    ((*_UPS, 3, 3, 1, 1, 1), lambda d, now: _int(1)),
    ((*_UPS, 3, 3, 1, 2, 1), lambda d, now: _int(0 if d.on_battery() else 500)),
    ((*_UPS, 3, 3, 1, 3, 1), lambda d, now: _int(_input_volts(d))),
    ((*_UPS, 4, 1, 0), lambda d, now: _int(5 if d.on_battery() else 3)),
    ((*_UPS, 4, 2, 0), lambda d, now: _int(500)),
    ((*_UPS, 4, 3, 0), lambda d, now: _int(1)),
    ((*_UPS, 4, 4, 1, 1, 1), lambda d, now: _int(1)),
    ((*_UPS, 4, 4, 1, 2, 1), lambda d, now: _int(220)),
    ((*_UPS, 4, 4, 1, 3, 1), lambda d, now: _int(_output_decamps(d))),
    ((*_UPS, 4, 4, 1, 4, 1), lambda d, now: _int(d.watts())),
    ((*_UPS, 4, 4, 1, 5, 1), lambda d, now: _int(round(d.load * 100))),
    # XUPS-MIB (Eaton)
    ((*_XUPS, 2, 1, 0), lambda d, now: _int(_minutes(d) * 60)),
    ((*_XUPS, 2, 2, 0), lambda d, now: _int(_battery_decivolts(d) // 10)),
    ((*_XUPS, 2, 4, 0), lambda d, now: _int(_charge(d))),
    ((*_XUPS, 3, 4, 1, 2, 1), lambda d, now: _int(_input_volts(d))),
    ((*_XUPS, 4, 1, 0), lambda d, now: _int(round(d.load * 100))),
    ((*_XUPS, 4, 4, 1, 2, 1), lambda d, now: _int(220)),
    ((*_XUPS, 4, 4, 1, 3, 1), lambda d, now: _int(_output_decamps(d) // 10)),
    ((*_XUPS, 4, 4, 1, 4, 1), lambda d, now: _int(d.watts())),
    ((*_XUPS, 4, 5, 0), lambda d, now: _int(5 if d.on_battery() else 3)),
    ((*_XUPS, 6, 1, 0), lambda d, now: _int(_celsius(d))),
    # PowerNet-MIB rack PDU: rPDUIdentDevicePowerWatts, the load table (phase total, banks 1 and 2)
    ((*_APC, 12, 1, 16, 0), lambda d, now: _int(d.watts() // 2)),
    # GEIST-V4-MIB: temperatureUnits celsius(1), the internal sensor
    ((*_GEIST, 1, 7, 0), lambda d, now: _int(1)),
    ((*_GEIST, 2, 1, 4, 1), lambda d, now: rfc1902.Gauge32(1)),
    ((*_GEIST, 2, 1, 5, 1), lambda d, now: _int(round(_celsius(d) * 10))),
    ((*_GEIST, 2, 1, 6, 1), lambda d, now: _int(48)),
]


def _pdu_rows() -> list[tuple[tuple[int, ...], Getter, int]]:
    rows: list[tuple[tuple[int, ...], Getter, int]] = []
    for index, (phase, bank, share) in enumerate(((1, 0, 1.0), (0, 1, 0.55), (0, 2, 0.45)), start=1):
        def load(r: Any, i: int, now: float, s: Any, share: float = share) -> rfc1902.Gauge32:
            return rfc1902.Gauge32(round(r.watts() / 2 / 230 * 10 * share))
        rows += [((*_APC, 12, 2, 3, 1, 1, 2, index), load, index),
                 ((*_APC, 12, 2, 3, 1, 1, 3, index), lambda r, i, now, s: _int(1), index),
                 ((*_APC, 12, 2, 3, 1, 1, 4, index), _fixed(phase), index),
                 ((*_APC, 12, 2, 3, 1, 1, 5, index), _fixed(bank), index)]
    for outlet in range(1, OUTLETS + 1):  # the last outlet is a spare, switched off
        rows.append(((*_APC, 12, 3, 5, 1, 1, 4, outlet),
                     lambda r, i, now, s: _int(2 if i == OUTLETS else 1), outlet))
    return rows


class PowerTable(MibTable):
    """The sorted OIDs of a lab power device: the system group, then every profile's objects."""

    def __init__(self) -> None:
        rows: list[tuple[tuple[int, ...], Getter, int]] = [(oid, get, 0) for oid, get in SCALARS[:7]]
        rows += [(oid, _d(get), 0) for oid, get in _DEVICE]
        rows += _pdu_rows()
        rows.sort(key=lambda row: row[0])
        self.oids = [row[0] for row in rows]
        self.rows = rows
        self.exact = {row[0]: row for row in rows}
        self.objects = {oid[:-1] for oid, _, _ in rows}


class PowerSimulator(SnmpSimulator):
    kind = "power"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None, port: int = 0) -> None:
        super().__init__(pool, seed, peers, port=port)
        self.table = PowerTable()

    async def set_state(self, target_id: str, state: str) -> None:
        device = self.routers[target_id]
        if state not in STATES:
            raise ValueError(f"power targets can be {', '.join(STATES)}, not {state!r}")
        device.state = state
        device.changed = time.monotonic()

    def _make_router(self, target_id: str, host: str, community: str) -> PowerDevice:
        rng = random.Random(f"{self.seed}:{target_id}")
        load = round(rng.uniform(0.2, 0.6), 2)
        now = time.monotonic()
        return PowerDevice(
            target_id=target_id, host=host, community=community.encode(),
            descr="Lab power device (egov-agent simulated THDL): UPS-MIB, XUPS-MIB, PowerNet rPDU, GEIST-V4",
            name=f"{target_id}-lab", location="THDL (simulated)", interfaces=[], boot=now - rng.uniform(1, 200) * 86400,
            state="online", changed=now, rng=rng, load=load, runtime_minutes=round(15 / load),
        )
