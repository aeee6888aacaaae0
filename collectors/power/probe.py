"""Data-centre power and environment over SNMP: UPSes, rack PDUs and temperature/humidity sensors.

The THDL must meet TCVN 9250:2012, so its power and climate are part of its health. A target names
one device and the ``profile`` (the MIB) it speaks:

* ``ups_mib``: the standard UPS-MIB (RFC 1628): upsOutputSource (battery(5) = on battery),
  upsBatteryStatus, upsSecondsOnBattery, upsEstimatedMinutesRemaining, upsEstimatedChargeRemaining,
  upsBatteryVoltage (0.1 V), and the input and output line tables (voltage, current, power, load);
* ``xups``: Eaton's XUPS-MIB: xupsOutputSource (same codes 1-7 as RFC 1628), xupsBattTimeRemaining
  (seconds), xupsBattVoltage (V), xupsBattCapacity (%), xupsOutputLoad (%), the input and output
  phase tables, and xupsEnvAmbientTemp (°C) when the card has it;
* ``apc_rpdu``: APC PowerNet rack PDUs: rPDULoadStatusTable (load per phase, and per bank, in tenths
  of amps), rPDUOutletStatusTable (outlet on/off), rPDUIdentDevicePowerWatts where present, the
  rPDU2 phase voltages and the rPDU2 temperature/humidity probe where one is plugged in;
* ``geist``: Geist (Vertiv) Watchdog climate monitors, GEIST-V4-MIB: the internal sensor's
  temperature (0.1 degrees, °C or °F per temperatureUnits) and humidity, and external probes.

Everything is exported in base units: seconds, ratio (percent / 100), volts, amperes, watts, celsius.
A device that answered with the objects its profile needs is up (a UPS on battery is up: the alert
on ``ups_on_battery`` says the rest); a failure is that device's alone, with the fixed reasons of
``collectors/snmp.py`` (``timeout``, ``snmp_auth_error``, ``snmp_no_such_object``,
``snmp_wrong_type``, ``snmp_malformed``, ``snmp_error``).

The SNMP itself (the v2c fast path on one socket for every device, the v3 engine, sessions, GET and
GETBULK walks, the reply matching and its drop counts, the error -> reason map) is the one
``collectors.snmp.client.SnmpClient`` the snmp and mcu collectors use too; this collector holds one.
"""

from __future__ import annotations

from typing import Any

from pysnmp.proto import rfc1902, rfc1905

from collectors.api import Collector, Family, ProbeFailure, ProbeResult, Sample
from collectors.power.models import PowerParams, PowerSettings
from collectors.snmp.client import Oid, Session, SnmpClient
from collectors.snmp.drops import DROPPED_REPLIES

_NUMERIC = (rfc1902.Integer32.tagSet, rfc1902.Gauge32.tagSet)
_MISSING = (rfc1905.NoSuchObject.tagSet, rfc1905.NoSuchInstance.tagSet, rfc1905.EndOfMibView.tagSet)
ON_BATTERY = 5  # upsOutputSource battery(5); xupsOutputSource uses the same code

# --- UPS-MIB (RFC 1628), 1.3.6.1.2.1.33 ------------------------------------------------------------
_UPS = (1, 3, 6, 1, 2, 1, 33, 1)
UPS_BATTERY_STATUS: Oid = (*_UPS, 2, 1, 0)
UPS_SECONDS_ON_BATTERY: Oid = (*_UPS, 2, 2, 0)
UPS_MINUTES_REMAINING: Oid = (*_UPS, 2, 3, 0)
UPS_CHARGE_REMAINING: Oid = (*_UPS, 2, 4, 0)
UPS_BATTERY_VOLTAGE: Oid = (*_UPS, 2, 5, 0)  # 0.1 V DC
UPS_BATTERY_TEMPERATURE: Oid = (*_UPS, 2, 7, 0)  # °C
UPS_OUTPUT_SOURCE: Oid = (*_UPS, 4, 1, 0)
UPS_INPUT_VOLTAGE: Oid = (*_UPS, 3, 3, 1, 3)  # RMS V, per input line
UPS_OUTPUT_VOLTAGE: Oid = (*_UPS, 4, 4, 1, 2)  # RMS V, per output line
UPS_OUTPUT_CURRENT: Oid = (*_UPS, 4, 4, 1, 3)  # 0.1 A
UPS_OUTPUT_POWER: Oid = (*_UPS, 4, 4, 1, 4)  # W
UPS_OUTPUT_LOAD: Oid = (*_UPS, 4, 4, 1, 5)  # %

# --- XUPS-MIB (Eaton), 1.3.6.1.4.1.534.1 -----------------------------------------------------------
_XUPS = (1, 3, 6, 1, 4, 1, 534, 1)
XUPS_BATT_TIME_REMAINING: Oid = (*_XUPS, 2, 1, 0)  # s
XUPS_BATT_VOLTAGE: Oid = (*_XUPS, 2, 2, 0)  # V DC
XUPS_BATT_CAPACITY: Oid = (*_XUPS, 2, 4, 0)  # %
XUPS_OUTPUT_LOAD: Oid = (*_XUPS, 4, 1, 0)  # % of rated capacity
XUPS_OUTPUT_SOURCE: Oid = (*_XUPS, 4, 5, 0)
XUPS_AMBIENT_TEMP: Oid = (*_XUPS, 6, 1, 0)  # °C
XUPS_INPUT_VOLTAGE: Oid = (*_XUPS, 3, 4, 1, 2)  # RMS V, per phase
XUPS_OUTPUT_VOLTAGE: Oid = (*_XUPS, 4, 4, 1, 2)  # RMS V, per phase
XUPS_OUTPUT_CURRENT: Oid = (*_XUPS, 4, 4, 1, 3)  # A
XUPS_OUTPUT_WATTS: Oid = (*_XUPS, 4, 4, 1, 4)  # W

# --- PowerNet-MIB (APC) rack PDUs, 1.3.6.1.4.1.318.1.1 ---------------------------------------------
_APC = (1, 3, 6, 1, 4, 1, 318, 1, 1)
RPDU_POWER_WATTS: Oid = (*_APC, 12, 1, 16, 0)  # rPDUIdentDevicePowerWatts
RPDU_LOAD: Oid = (*_APC, 12, 2, 3, 1, 1, 2)  # rPDULoadStatusLoad, 0.1 A
RPDU_LOAD_STATE: Oid = (*_APC, 12, 2, 3, 1, 1, 3)  # 1 normal, 2 lowLoad, 3 nearOverload, 4 overload
RPDU_LOAD_PHASE: Oid = (*_APC, 12, 2, 3, 1, 1, 4)
RPDU_LOAD_BANK: Oid = (*_APC, 12, 2, 3, 1, 1, 5)  # 0: the row is a phase total
RPDU_OUTLET_STATE: Oid = (*_APC, 12, 3, 5, 1, 1, 4)  # outletStatusOn(1), outletStatusOff(2)
RPDU2_PHASE_NUMBER: Oid = (*_APC, 26, 6, 3, 1, 3)
RPDU2_PHASE_VOLTAGE: Oid = (*_APC, 26, 6, 3, 1, 6)  # V; -1 where the PDU does not measure it
RPDU2_SENSOR_TEMP: Oid = (*_APC, 26, 10, 2, 2, 1, 8)  # 0.1 °C; -1 without a probe
RPDU2_SENSOR_HUMIDITY: Oid = (*_APC, 26, 10, 2, 2, 1, 10)  # %; -1 without a humidity probe

# --- GEIST-V4-MIB (Geist / Vertiv Watchdog), 1.3.6.1.4.1.21239.5.1 ---------------------------------
_GEIST = (1, 3, 6, 1, 4, 1, 21239, 5, 1)
GEIST_TEMPERATURE_UNITS: Oid = (*_GEIST, 1, 7, 0)  # 0 fahrenheit, 1 celsius
GEIST_INTERNAL_AVAIL: Oid = (*_GEIST, 2, 1, 4)
GEIST_INTERNAL_TEMP: Oid = (*_GEIST, 2, 1, 5)  # 0.1 degrees
GEIST_INTERNAL_HUMIDITY: Oid = (*_GEIST, 2, 1, 6)  # %
GEIST_PROBE_AVAIL: Oid = (*_GEIST, 4, 1, 4)
GEIST_PROBE_TEMP: Oid = (*_GEIST, 4, 1, 5)  # 0.1 degrees


def _number(what: str, value: Any, required: bool = True) -> int | None:
    """An INTEGER or Gauge32 as int; a missing object is None unless required; any other type fails."""
    if value.tagSet in _MISSING:
        if required:
            raise ProbeFailure("snmp_no_such_object", f"{what}: {type(value).__name__}")
        return None
    if value.tagSet not in _NUMERIC:
        raise ProbeFailure("snmp_wrong_type", f"{what}: got {type(value).__name__}")
    return int(value)


def _column(found: dict[Oid, dict[int, Any]], column: Oid, what: str) -> dict[int, int]:
    return {i: n for i, v in sorted(found[column].items()) if (n := _number(f"{what}.{i}", v, False)) is not None}


class PowerCollector(Collector[PowerParams, PowerSettings]):
    kind = "power"
    Params = PowerParams
    Settings = PowerSettings
    families = (
        Family("ups_on_battery", "gauge", "1 when the UPS output is fed from its battery (output source battery)."),
        Family("ups_output_source", "gauge", "Output source: 1 other, 2 none, 3 normal, 4 bypass, 5 battery, "
               "6 booster, 7 reducer (UPS-MIB and XUPS-MIB codes)."),
        Family("ups_battery_status", "gauge", "upsBatteryStatus: 1 unknown, 2 normal, 3 low, 4 depleted (UPS-MIB)."),
        Family("ups_battery_charge_ratio", "gauge", "Battery charge remaining, 0-1."),
        Family("ups_battery_runtime_seconds", "gauge", "Estimated time the battery can carry the present load."),
        Family("ups_battery_voltage_volts", "gauge", "Battery voltage (DC)."),
        Family("ups_seconds_on_battery", "gauge", "Time since the UPS switched to battery; 0 on mains (UPS-MIB)."),
        Family("ups_load_ratio", "gauge", "Output load as a share of the rated capacity, per output line "
               "(line \"all\": the UPS's own total).", ("line",)),
        Family("ups_input_voltage_volts", "gauge", "Input voltage per input line or phase.", ("line",)),
        Family("ups_output_voltage_volts", "gauge", "Output voltage per output line or phase.", ("line",)),
        Family("ups_output_current_amperes", "gauge", "Output current per output line or phase.", ("line",)),
        Family("ups_output_power_watts", "gauge", "Output true power per output line or phase.", ("line",)),
        Family("pdu_current_amperes", "gauge", "PDU load current per phase (bank \"0\") or per bank.",
               ("phase", "bank")),
        Family("pdu_load_state", "gauge", "Load state per phase or bank: 1 normal, 2 low, 3 near overload, "
               "4 overload.", ("phase", "bank")),
        Family("pdu_power_watts", "gauge", "Power drawn through the whole PDU."),
        Family("pdu_phase_voltage_volts", "gauge", "Voltage per PDU phase, where the PDU measures it.", ("phase",)),
        Family("pdu_outlet_on", "gauge", "1 when the outlet is switched on, 0 when off.", ("outlet",)),
        Family("env_temperature_celsius", "gauge", "Temperature at a sensor of the device.", ("sensor",)),
        Family("env_humidity_ratio", "gauge", "Relative humidity at a sensor of the device, 0-1.", ("sensor",)),
    )

    self_families = (DROPPED_REPLIES,)

    def __init__(self, settings: PowerSettings) -> None:
        super().__init__(settings)
        self.snmp = SnmpClient(settings.max_repetitions, settings.timeout, settings.retries)

    def self_samples(self) -> list[Sample]:
        return self.snmp.dropped_samples()

    async def close(self) -> None:
        await self.snmp.close()

    async def probe(self, target_id: str, params: PowerParams, timeout: float) -> ProbeResult:
        session = await self.snmp.session(target_id, params, params.timeout, params.retries)
        reader = {"ups_mib": self._ups_mib, "xups": self._xups, "apc_rpdu": self._apc_rpdu,
                  "geist": self._geist}[params.profile]
        return ProbeResult(True, "", await reader(session))

    async def _table(self, session: Session, columns: list[Oid]) -> dict[Oid, dict[int, Any]]:
        """Every column in one GETBULK walk side by side: one round trip for a PDU's 24 outlets."""
        _, found = await self.snmp.walk(session, columns, self.settings.max_repetitions)
        return found

    # -- profiles -------------------------------------------------------------------------------

    async def _ups_mib(self, session: Session) -> list[Sample]:
        scalars = [UPS_OUTPUT_SOURCE, UPS_BATTERY_STATUS, UPS_CHARGE_REMAINING, UPS_MINUTES_REMAINING,
                   UPS_SECONDS_ON_BATTERY, UPS_BATTERY_VOLTAGE]
        source, status, charge, minutes, on_battery, voltage = await self.snmp.get(session, scalars)
        src = _number("upsOutputSource.0", source)
        out = [Sample("ups_on_battery", float(src == ON_BATTERY)), Sample("ups_output_source", float(src or 0)),
               Sample("ups_battery_status", float(_number("upsBatteryStatus.0", status) or 0)),
               Sample("ups_battery_charge_ratio", (_number("upsEstimatedChargeRemaining.0", charge) or 0) / 100),
               Sample("ups_battery_runtime_seconds", (_number("upsEstimatedMinutesRemaining.0", minutes) or 0) * 60.0)]
        if (seconds := _number("upsSecondsOnBattery.0", on_battery, False)) is not None:
            out.append(Sample("ups_seconds_on_battery", float(seconds)))
        if (tenths := _number("upsBatteryVoltage.0", voltage, False)) is not None:
            out.append(Sample("ups_battery_voltage_volts", tenths / 10))
        found = await self._table(session, [UPS_INPUT_VOLTAGE, UPS_OUTPUT_VOLTAGE, UPS_OUTPUT_CURRENT,
                                            UPS_OUTPUT_POWER, UPS_OUTPUT_LOAD])
        for family, column, what, divisor in (  # divided, not multiplied by 0.1: 47 / 100 is 0.47 exactly
                ("ups_input_voltage_volts", UPS_INPUT_VOLTAGE, "upsInputVoltage", 1),
                ("ups_output_voltage_volts", UPS_OUTPUT_VOLTAGE, "upsOutputVoltage", 1),
                ("ups_output_current_amperes", UPS_OUTPUT_CURRENT, "upsOutputCurrent", 10),
                ("ups_output_power_watts", UPS_OUTPUT_POWER, "upsOutputPower", 1),
                ("ups_load_ratio", UPS_OUTPUT_LOAD, "upsOutputPercentLoad", 100)):
            out += [Sample(family, n / divisor, (str(i),)) for i, n in _column(found, column, what).items()]
        return out

    async def _xups(self, session: Session) -> list[Sample]:
        scalars = [XUPS_OUTPUT_SOURCE, XUPS_BATT_CAPACITY, XUPS_BATT_TIME_REMAINING, XUPS_BATT_VOLTAGE,
                   XUPS_OUTPUT_LOAD, XUPS_AMBIENT_TEMP]
        source, capacity, remaining, voltage, load, ambient = await self.snmp.get(session, scalars)
        src = _number("xupsOutputSource.0", source)
        out = [Sample("ups_on_battery", float(src == ON_BATTERY)), Sample("ups_output_source", float(src or 0)),
               Sample("ups_battery_charge_ratio", (_number("xupsBattCapacity.0", capacity) or 0) / 100),
               Sample("ups_battery_runtime_seconds", float(_number("xupsBattTimeRemaining.0", remaining) or 0))]
        for family, value, what, divisor, labels in (
                ("ups_battery_voltage_volts", voltage, "xupsBattVoltage.0", 1, ()),
                ("ups_load_ratio", load, "xupsOutputLoad.0", 100, ("all",)),
                ("env_temperature_celsius", ambient, "xupsEnvAmbientTemp.0", 1, ("ambient",))):
            if (n := _number(what, value, False)) is not None:
                out.append(Sample(family, n / divisor, labels))
        found = await self._table(session, [XUPS_INPUT_VOLTAGE, XUPS_OUTPUT_VOLTAGE, XUPS_OUTPUT_CURRENT,
                                            XUPS_OUTPUT_WATTS])
        for family, column, what in (("ups_input_voltage_volts", XUPS_INPUT_VOLTAGE, "xupsInputVoltage"),
                                     ("ups_output_voltage_volts", XUPS_OUTPUT_VOLTAGE, "xupsOutputVoltage"),
                                     ("ups_output_current_amperes", XUPS_OUTPUT_CURRENT, "xupsOutputCurrent"),
                                     ("ups_output_power_watts", XUPS_OUTPUT_WATTS, "xupsOutputWatts")):
            out += [Sample(family, float(n), (str(i),)) for i, n in _column(found, column, what).items()]
        return out

    async def _apc_rpdu(self, session: Session) -> list[Sample]:
        (watts,) = await self.snmp.get(session, [RPDU_POWER_WATTS])
        found = await self._table(session, [RPDU_LOAD, RPDU_LOAD_STATE, RPDU_LOAD_PHASE, RPDU_LOAD_BANK,
                                            RPDU_OUTLET_STATE, RPDU2_PHASE_NUMBER, RPDU2_PHASE_VOLTAGE,
                                            RPDU2_SENSOR_TEMP, RPDU2_SENSOR_HUMIDITY])
        load = _column(found, RPDU_LOAD, "rPDULoadStatusLoad")
        if not load:
            raise ProbeFailure("snmp_no_such_object", "rPDULoadStatusLoad: the PDU reports no phase or bank")
        state = _column(found, RPDU_LOAD_STATE, "rPDULoadStatusLoadState")
        phase = _column(found, RPDU_LOAD_PHASE, "rPDULoadStatusPhaseNumber")
        bank = _column(found, RPDU_LOAD_BANK, "rPDULoadStatusBankNumber")
        out: list[Sample] = []
        for index, tenths in load.items():
            labels = (str(phase.get(index, 1)), str(bank.get(index, 0)))
            out.append(Sample("pdu_current_amperes", tenths / 10, labels))
            if index in state:
                out.append(Sample("pdu_load_state", float(state[index]), labels))
        if (w := _number("rPDUIdentDevicePowerWatts.0", watts, False)) is not None and w >= 0:
            out.append(Sample("pdu_power_watts", float(w)))
        out += [Sample("pdu_outlet_on", float(n == 1), (str(i),))
                for i, n in _column(found, RPDU_OUTLET_STATE, "rPDUOutletStatusOutletState").items()]
        numbers = _column(found, RPDU2_PHASE_NUMBER, "rPDU2PhaseStatusNumber")
        for i, volts in _column(found, RPDU2_PHASE_VOLTAGE, "rPDU2PhaseStatusVoltage").items():
            if volts >= 0:  # -1: this PDU does not measure it
                out.append(Sample("pdu_phase_voltage_volts", float(volts), (str(numbers.get(i, i)),)))
        for i, tenths in _column(found, RPDU2_SENSOR_TEMP, "rPDU2SensorTempHumidityStatusTempC").items():
            if tenths != -1:
                out.append(Sample("env_temperature_celsius", tenths / 10, (f"probe-{i}",)))
        for i, percent in _column(found, RPDU2_SENSOR_HUMIDITY, "rPDU2SensorTempHumidityStatusRelativeHumidity"
                                  ).items():
            if percent >= 0:
                out.append(Sample("env_humidity_ratio", percent / 100, (f"probe-{i}",)))
        return out

    async def _geist(self, session: Session) -> list[Sample]:
        (units,) = await self.snmp.get(session, [GEIST_TEMPERATURE_UNITS])
        fahrenheit = _number("temperatureUnits.0", units, False) == 0

        def celsius(tenths: int) -> float:
            degrees = tenths / 10
            return round((degrees - 32) * 5 / 9, 4) if fahrenheit else degrees

        found = await self._table(session, [GEIST_INTERNAL_AVAIL, GEIST_INTERNAL_TEMP, GEIST_INTERNAL_HUMIDITY,
                                            GEIST_PROBE_AVAIL, GEIST_PROBE_TEMP])
        out: list[Sample] = []
        for kind, avail_col, temp_col, what in (("internal", GEIST_INTERNAL_AVAIL, GEIST_INTERNAL_TEMP, "internal"),
                                                ("probe", GEIST_PROBE_AVAIL, GEIST_PROBE_TEMP, "tempSensor")):
            avail = _column(found, avail_col, f"{what}Avail")
            for i, tenths in _column(found, temp_col, f"{what}Temp").items():
                if avail.get(i, 1):  # 0: the sensor is unplugged; its last reading is stale
                    out.append(Sample("env_temperature_celsius", celsius(tenths), (f"{kind}-{i}",)))
        avail = _column(found, GEIST_INTERNAL_AVAIL, "internalAvail")
        for i, percent in _column(found, GEIST_INTERNAL_HUMIDITY, "internalHumidity").items():
            if avail.get(i, 1):
                out.append(Sample("env_humidity_ratio", percent / 100, (f"internal-{i}",)))
        if not out:
            raise ProbeFailure("snmp_no_such_object", "no available Geist temperature sensor")
        return out
