"""RFC 1628 UPSes against data the lab generates (agent/lab/ups.py; no RFC 1628 recording ships with
snmpsim-data): in each state, every value the power collector exports equals what net-snmp reads from
the same simulated UPS at the same moment, converted to base units."""

from __future__ import annotations

import asyncio

from support.snmp_peers import net_snmp_async, number

from collectors.api import ProbeResult
from collectors.lab_addresses import AddressPool
from collectors.power.lab import PowerSimulator
from collectors.power.probe import PowerCollector, PowerParams, PowerSettings
from collectors.runner import run_probe
from collectors.snmp.lab import ensure_community

UPS = "1.3.6.1.2.1.33.1"
SCALARS = {"source": f"{UPS}.4.1.0", "status": f"{UPS}.2.1.0", "on_battery": f"{UPS}.2.2.0",
           "minutes": f"{UPS}.2.3.0", "charge": f"{UPS}.2.4.0", "voltage": f"{UPS}.2.5.0"}
LINES = {"ups_input_voltage_volts": (f"{UPS}.3.3.1.3", 1), "ups_output_voltage_volts": (f"{UPS}.4.4.1.2", 1),
         "ups_output_current_amperes": (f"{UPS}.4.4.1.3", 10), "ups_output_power_watts": (f"{UPS}.4.4.1.4", 1),
         "ups_load_ratio": (f"{UPS}.4.4.1.5", 100)}


def values(result: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    assert result.up, result
    return {(s.family, s.labels): s.value for s in result.samples}


async def expected_and_exported(collector: PowerCollector, params: PowerParams, target: str,
                                ) -> tuple[dict, dict, tuple[int, int], float]:
    auth = ["-v2c", "-c", ensure_community()]
    before = await net_snmp_async("snmpget", auth, target, *SCALARS.values())
    result = await run_probe(collector, "ups", params, 5.0)
    after = await net_snmp_async("snmpget", auth, target, *SCALARS.values())
    s = {k: number(before, oid) for k, oid in SCALARS.items()}
    assert {k: number(after, oid) for k, oid in SCALARS.items() if k != "on_battery"} == \
        {k: v for k, v in s.items() if k != "on_battery"}, "the UPS changed state during the probe"
    expected = {("ups_on_battery", ()): float(s["source"] == 5), ("ups_output_source", ()): float(s["source"]),
                ("ups_battery_status", ()): float(s["status"]), ("ups_battery_charge_ratio", ()): s["charge"] / 100,
                ("ups_battery_runtime_seconds", ()): s["minutes"] * 60.0,
                ("ups_battery_voltage_volts", ()): s["voltage"] / 10}
    for family, (column, divisor) in LINES.items():
        walked = await net_snmp_async("snmpwalk", auth, target, column)
        expected |= {(family, (oid.rsplit(".", 1)[1],)): number(walked, oid) / divisor for oid in walked}
    got = values(result)
    seconds = got.pop(("ups_seconds_on_battery", ()))
    return expected, got, (s["on_battery"], number(after, SCALARS["on_battery"])), seconds


def test_rfc1628_ups_states_equal_snmpget() -> None:
    async def run() -> None:
        simulator = PowerSimulator(AddressPool(), seed=5)
        collector = PowerCollector(PowerSettings(timeout=1.0, retries=0))
        try:
            raw = await simulator.add("thdl-ups-1", {"host": "10.24.0.21", "profile": "ups_mib",
                                                     "community": "env:EGOV_SNMP_COMMUNITY"}, True)
            params = PowerParams.model_validate(raw)
            assert str(params.host).startswith("127.77.") and params.community is not None
            target = f"{params.host}:{params.port}"
            seen = {}
            for state in ("online", "on_battery", "low_battery"):
                await simulator.set_state("thdl-ups-1", state)
                if state != "online":
                    await asyncio.sleep(1.1)  # upsSecondsOnBattery counts whole seconds
                expected, got, (low, high), seconds = await expected_and_exported(collector, params, target)
                assert got == expected, state
                assert low <= seconds <= high, (state, low, seconds, high)
                seen[state] = (got, seconds)
            online, on_battery, low_battery = seen["online"][0], seen["on_battery"][0], seen["low_battery"][0]
            assert online[("ups_on_battery", ())] == 0 and seen["online"][1] == 0
            assert online[("ups_input_voltage_volts", ("1",))] > 0 and online[("ups_battery_status", ())] == 2
            assert on_battery[("ups_on_battery", ())] == 1 and seen["on_battery"][1] >= 1
            assert on_battery[("ups_input_voltage_volts", ("1",))] == 0
            assert low_battery[("ups_battery_status", ())] == 3  # batteryLow
            assert low_battery[("ups_battery_runtime_seconds", ())] < 600  # under EgovUpsLowRuntime's 10 minutes

            await simulator.set_state("thdl-ups-1", "down")
            result = await run_probe(collector, "ups", params, 3.0)
            assert (result.up, result.reason) == (False, "timeout")
        finally:
            await collector.close()
            await simulator.close()

    asyncio.run(run())


def test_lab_device_serves_the_other_profiles_and_the_hot_room() -> None:
    async def run() -> None:
        simulator = PowerSimulator(AddressPool(), seed=5)
        collector = PowerCollector(PowerSettings(timeout=1.0, retries=0))
        try:
            results = {}
            for profile in ("xups", "apc_rpdu", "geist"):
                raw = await simulator.add(f"dev-{profile}", {"host": f"10.24.0.{30 + len(results)}",
                                                             "profile": profile,
                                                             "community": "env:EGOV_SNMP_COMMUNITY"}, True)
                params = PowerParams.model_validate(raw)
                results[profile] = values(await run_probe(collector, profile, params, 5.0))
                await simulator.set_state(f"dev-{profile}", "hot")
                results[f"{profile}-hot"] = values(await run_probe(collector, profile, params, 5.0))
            assert results["xups"][("env_temperature_celsius", ("ambient",))] == 23
            assert results["xups-hot"][("env_temperature_celsius", ("ambient",))] == 31
            assert results["geist"][("env_temperature_celsius", ("internal-1",))] == 23.5
            assert results["geist-hot"][("env_temperature_celsius", ("internal-1",))] == 31.5
            assert results["geist"][("env_humidity_ratio", ("internal-1",))] == 0.48
            pdu = results["apc_rpdu"]
            assert sum(v for (f, _), v in pdu.items() if f == "pdu_outlet_on") == 7  # the spare is off
            banks = [v for (f, labels), v in pdu.items() if f == "pdu_current_amperes" and labels[1] != "0"]
            assert len(banks) == 2 and pdu[("pdu_power_watts", ())] > 0
        finally:
            await collector.close()
            await simulator.close()

    asyncio.run(run())
