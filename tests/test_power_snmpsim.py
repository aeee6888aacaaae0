"""The power collector against real device recordings served by snmpsim: snmpsim's own Eaton 9PX walk
(XUPS-MIB), and snmpsim-data's APC rack PDUs (AP7902B, AP8641, AP8932) and Geist climate monitor,
whose readings vary over time. Every value exported equals what net-snmp reads from the same device,
converted to base units; broken devices get their own labelled reason."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.exposition import parse_samples, sample
from support.paths import AGENT, REPO
from support.province import Province
from support.snmp_peers import net_snmp, number, snmpsim, snmpsim_recordings

from collectors.api import ProbeResult
from collectors.power.probe import PowerCollector, PowerParams, PowerSettings
from collectors.runner import run_probe

XUPS_SOURCE = "1.3.6.1.4.1.534.1.4.5.0"
DEVICES = {"eaton": "xups", "apc7902b": "apc_rpdu", "apc8641": "apc_rpdu", "apc8932": "apc_rpdu", "geist": "geist"}
for _name in [*DEVICES, "eatonbad", "nope"]:
    os.environ[f"EGOV_TEST_POWER_{_name.upper()}"] = _name


def snmpsim_data() -> Path:
    """snmpsim-data's recordings (the ``test`` extra installs the package)."""
    import snmpsim_data

    return Path(snmpsim_data.__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("snmpsim-power")
    data = tmp / "data"
    data.mkdir()
    eaton = snmpsim_recordings() / "eaton-9PX-partial-walk.snmprec"
    shutil.copy(eaton, data / "eaton.snmprec")
    for name, path in (("apc7902b", "UPS/apc-7902b"), ("apc8641", "UPS/apc-8641"), ("apc8932", "UPS/apc-8932"),
                       ("geist", "iot/geist-temperature-sensor")):
        shutil.copy(snmpsim_data() / f"{path}.snmprec", data / f"{name}.snmprec")
    lines = eaton.read_text(encoding="utf-8").splitlines(True)
    assert f"{XUPS_SOURCE}|2|3\n" in lines
    (data / "eatonbad.snmprec").write_text(  # xupsOutputSource recorded as a string
        "".join(f"{XUPS_SOURCE}|4|normal\n" if line == f"{XUPS_SOURCE}|2|3\n" else line for line in lines),
        encoding="utf-8")
    with snmpsim(data, tmp) as endpoint:
        yield endpoint


def params(endpoint: tuple[str, int], community: str, profile: str | None = None) -> PowerParams:
    host, port = endpoint
    return PowerParams.model_validate({"host": host, "port": port, "profile": profile or DEVICES[community],
                                       "community": f"env:EGOV_TEST_POWER_{community.upper()}"})


def probe_all(targets: dict[str, PowerParams], settings: PowerSettings | None = None) -> dict[str, ProbeResult]:
    async def run() -> dict[str, ProbeResult]:
        collector = PowerCollector(settings or PowerSettings())
        try:
            results = await asyncio.gather(*(run_probe(collector, t, p, 5.0) for t, p in targets.items()))
        finally:
            await collector.close()
        return dict(zip(targets, results, strict=True))

    return asyncio.run(run())


def exported(result: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    assert result.up, result
    got = {(s.family, s.labels): s.value for s in result.samples}
    assert len(got) == len(result.samples), "a series exported twice"
    return got


def get(endpoint: tuple[str, int], community: str, *oids: str) -> dict[str, tuple[str, str]]:
    return net_snmp("snmpget", ["-v2c", "-c", community], f"{endpoint[0]}:{endpoint[1]}", *oids)


def walk(endpoint: tuple[str, int], community: str, column: str) -> dict[str, int]:
    """A column as {row index: value}, read with snmpwalk (GETNEXT: not the collector's GETBULK)."""
    values = net_snmp("snmpwalk", ["-v2c", "-c", community], f"{endpoint[0]}:{endpoint[1]}", column)
    return {oid.rsplit(".", 1)[1]: number(values, oid) for oid in values if oid.startswith(column + ".")}


def test_eaton_9px_xups_values_equal_snmpget(devices: tuple[str, int]) -> None:
    x = "1.3.6.1.4.1.534.1"
    scalars = get(devices, "eaton", XUPS_SOURCE, f"{x}.2.1.0", f"{x}.2.2.0", f"{x}.2.4.0", f"{x}.4.1.0", f"{x}.6.1.0")
    source = number(scalars, XUPS_SOURCE)
    expected = {
        ("ups_on_battery", ()): float(source == 5),
        ("ups_output_source", ()): float(source),
        ("ups_battery_runtime_seconds", ()): float(number(scalars, f"{x}.2.1.0")),  # xupsBattTimeRemaining, s
        ("ups_battery_voltage_volts", ()): float(number(scalars, f"{x}.2.2.0")),
        ("ups_battery_charge_ratio", ()): number(scalars, f"{x}.2.4.0") / 100,
        ("ups_load_ratio", ("all",)): number(scalars, f"{x}.4.1.0") / 100,
        ("env_temperature_celsius", ("ambient",)): float(number(scalars, f"{x}.6.1.0")),
    }
    for family, column in (("ups_input_voltage_volts", f"{x}.3.4.1.2"), ("ups_output_voltage_volts", f"{x}.4.4.1.2"),
                           ("ups_output_current_amperes", f"{x}.4.4.1.3"), ("ups_output_power_watts", f"{x}.4.4.1.4")):
        expected |= {(family, (i,)): float(v) for i, v in walk(devices, "eaton", column).items()}
    got = exported(probe_all({"eaton": params(devices, "eaton")})["eaton"])
    assert got == expected
    # The recording itself: a 9PX on mains with a full battery, 17,218 s of runtime, 243 V in, 231 V out.
    assert got[("ups_on_battery", ())] == 0 and got[("ups_battery_runtime_seconds", ())] == 17218
    assert got[("ups_input_voltage_volts", ("1",))] == 243 and got[("ups_output_voltage_volts", ("1",))] == 231


@pytest.mark.parametrize("pdu", ["apc7902b", "apc8641", "apc8932"])
def test_apc_rack_pdu_values_equal_snmpget(devices: tuple[str, int], pdu: str) -> None:
    apc = "1.3.6.1.4.1.318.1.1"
    load = walk(devices, pdu, f"{apc}.12.2.3.1.1.2")
    state = walk(devices, pdu, f"{apc}.12.2.3.1.1.3")
    phase = walk(devices, pdu, f"{apc}.12.2.3.1.1.4")
    bank = walk(devices, pdu, f"{apc}.12.2.3.1.1.5")
    expected: dict[tuple[str, tuple[str, ...]], float] = {}
    for i, tenths in load.items():
        labels = (str(phase[i]), str(bank[i]))
        expected[("pdu_current_amperes", labels)] = tenths / 10
        expected[("pdu_load_state", labels)] = float(state[i])
    watts = number(get(devices, pdu, f"{apc}.12.1.16.0"), f"{apc}.12.1.16.0")
    if watts >= 0:
        expected[("pdu_power_watts", ())] = float(watts)
    outlets = walk(devices, pdu, f"{apc}.12.3.5.1.1.4")
    expected |= {("pdu_outlet_on", (i,)): float(v == 1) for i, v in outlets.items()}
    numbers = walk(devices, pdu, f"{apc}.26.6.3.1.3")  # rPDU2PhaseStatusNumber
    expected |= {("pdu_phase_voltage_volts", (str(numbers[i]),)): float(v)
                 for i, v in walk(devices, pdu, f"{apc}.26.6.3.1.6").items() if v >= 0}
    expected |= {("env_temperature_celsius", (f"probe-{i}",)): v / 10
                 for i, v in walk(devices, pdu, f"{apc}.26.10.2.2.1.8").items() if v != -1}
    expected |= {("env_humidity_ratio", (f"probe-{i}",)): v / 100
                 for i, v in walk(devices, pdu, f"{apc}.26.10.2.2.1.10").items() if v >= 0}
    got = exported(probe_all({pdu: params(devices, pdu)}, PowerSettings(max_repetitions=4))[pdu])  # several rounds
    assert got == expected
    assert len(outlets) in (16, 24)
    assert ("pdu_current_amperes", ("1", "0")) in got  # the phase total row, beside the banks


def test_geist_varying_readings_lie_between_snmpget_before_and_after(devices: tuple[str, int]) -> None:
    g = "1.3.6.1.4.1.21239.5.1"
    oids = {("env_temperature_celsius", ("internal-1",)): (f"{g}.2.1.5.1", 10),
            ("env_humidity_ratio", ("internal-1",)): (f"{g}.2.1.6.1", 100),
            ("env_temperature_celsius", ("probe-2",)): (f"{g}.4.1.5.2", 10),
            ("env_temperature_celsius", ("probe-3",)): (f"{g}.4.1.5.3", 10)}
    units = number(get(devices, "geist", f"{g}.1.7.0"), f"{g}.1.7.0")
    assert units == 1  # celsius: readings are tenths of °C
    before = get(devices, "geist", *[oid for oid, _ in oids.values()])
    got = exported(probe_all({"geist": params(devices, "geist")})["geist"])
    after = get(devices, "geist", *[oid for oid, _ in oids.values()])
    assert set(got) == set(oids)
    for key, (oid, divisor) in oids.items():
        low, high = number(before, oid) / divisor, number(after, oid) / divisor
        value = got[key]
        if low <= high:
            assert low <= value <= high, (key, low, value, high)
        else:  # the simulated reading wrapped round its range between the two reads
            assert value >= low or value <= high, (key, low, value, high)
    assert 10 <= got[("env_temperature_celsius", ("internal-1",))] <= 40  # tenths of 100-300 (wrap tolerance)


def test_each_broken_device_gets_its_reason_and_the_good_ones_stay_up(devices: tuple[str, int]) -> None:
    targets = {
        "eaton": params(devices, "eaton"),
        "apc": params(devices, "apc8641"),
        "eaton-as-rfc1628": params(devices, "eaton", "ups_mib"),  # the 9PX card here has no UPS-MIB
        "apc-as-geist": params(devices, "apc8641", "geist"),
        "wrong-type": params(devices, "eatonbad", "xups"),
        "wrong-community": params(devices, "nope", "xups"),
    }
    results = probe_all(targets, PowerSettings(timeout=0.5, retries=0))
    assert results["eaton"].up and results["apc"].up
    assert (results["eaton-as-rfc1628"].up, results["eaton-as-rfc1628"].reason) == (False, "snmp_no_such_object")
    assert "upsOutputSource" in results["eaton-as-rfc1628"].detail
    assert (results["apc-as-geist"].up, results["apc-as-geist"].reason) == (False, "snmp_no_such_object")
    assert (results["wrong-type"].up, results["wrong-type"].reason) == (False, "snmp_wrong_type")
    assert "xupsOutputSource" in results["wrong-type"].detail
    assert (results["wrong-community"].up, results["wrong-community"].reason) == (False, "timeout")
    for result in results.values():
        assert "nope" not in result.detail and "eatonbad" not in result.detail


def agent_province(host: str, port: int) -> Province:
    """Three power devices at the THDL, all served by the one snmpsim; the third asks the wrong MIB."""
    p = Province(code="t", name_en="Test", root="t").unit("thdl", "THDL", level="site")
    p.collector("power", interval="30s", timeout="5s", settings={"timeout": 0.5, "retries": 0})
    for target_id, profile, community in (("ups-eaton", "xups", "EATON"), ("pdu-a", "apc_rpdu", "APC8641"),
                                          ("ups-wrong-mib", "ups_mib", "EATON")):
        p.target(target_id, "thdl", "power", params={"host": host, "port": port, "profile": profile,
                                                     "community": f"env:EGOV_TEST_POWER_{community}"})
    return p


def test_the_agent_exports_the_recorded_values(devices: tuple[str, int], tmp_path: Path) -> None:
    """``egov-agent once`` as a real process; its exposition parsed with prometheus_client's parser."""
    config = agent_province(*devices).write(tmp_path / "province.yml")
    env = {**os.environ, "EGOV_AGENT_PROBE_ALLOW": "127.0.0.0/8,::1/128"}
    once = subprocess.run([*AGENT, "once", "--config", str(config), "--format", "prometheus"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert once.returncode == 0, once.stderr
    assert "apc8641" not in once.stdout + once.stderr  # the community
    samples = parse_samples(once.stdout)
    x = "1.3.6.1.4.1.534.1"
    read = get(devices, "eaton", f"{x}.2.1.0", f"{x}.2.4.0", f"{x}.4.4.1.2.1")
    assert sample(samples, "egov_ups_battery_runtime_seconds", target="ups-eaton") == number(read, f"{x}.2.1.0")
    assert sample(samples, "egov_ups_battery_charge_ratio", target="ups-eaton") == number(read, f"{x}.2.4.0") / 100
    assert sample(samples, "egov_ups_output_voltage_volts", target="ups-eaton", line="1") == \
        number(read, f"{x}.4.4.1.2.1")
    assert sample(samples, "egov_ups_on_battery", target="ups-eaton", site="thdl") == 0
    tenths = number(get(devices, "apc8641", "1.3.6.1.4.1.318.1.1.12.2.3.1.1.2.1"), "1.3.6.1.4.1.318.1.1.12.2.3.1.1.2.1")
    assert sample(samples, "egov_pdu_current_amperes", target="pdu-a", phase="1", bank="0") == tenths / 10
    assert sample(samples, "egov_target_up", target="ups-eaton") == 1
    assert sample(samples, "egov_target_up", target="ups-wrong-mib") == 0
    assert sample(samples, "egov_target_probe_failures_total", target="ups-wrong-mib",
                  reason="snmp_no_such_object") == 1
