"""The snmp collector against snmpsim serving its bundled recording of a real Linux host, and against
broken devices: each failure is labelled and stays that device's own."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from support.snmp_peers import (
    COLUMNS,
    FAMILY,
    SYS_UPTIME,
    SilentPeer,
    garbage_peer,
    net_snmp,
    number,
    snmpsim,
    snmpsim_recordings,
)

from collectors.api import ProbeResult
from collectors.runner import run_probe
from collectors.snmp.probe import SnmpCollector, SnmpParams, SnmpSettings

os.environ["EGOV_TEST_SNMPSIM_LINUX"] = "linux"
os.environ["EGOV_TEST_SNMPSIM_WRONGTYPE"] = "wrongtype"
os.environ["EGOV_TEST_SNMPSIM_NOHC"] = "nohc"
ETH0_OPER = "1.3.6.1.2.1.2.2.1.8.2"


@pytest.fixture(scope="module")
def recorded_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """snmpsim serving linux-full-walk.snmprec as community ``linux``, and two damaged copies of it:
    ``wrongtype`` (eth0's ifOperStatus recorded as a string) and ``nohc`` (no 64-bit octet counters)."""
    tmp = tmp_path_factory.mktemp("snmpsim")
    data = tmp / "data"
    data.mkdir()
    lines = (snmpsim_recordings() / "linux-full-walk.snmprec").read_text(encoding="utf-8").splitlines(True)
    (data / "linux.snmprec").write_text("".join(lines), encoding="utf-8")
    assert f"{ETH0_OPER}|2|1\n" in lines
    (data / "wrongtype.snmprec").write_text(
        "".join(f"{ETH0_OPER}|4|up\n" if line == f"{ETH0_OPER}|2|1\n" else line for line in lines), encoding="utf-8")
    hc = (COLUMNS["in_octets"] + ".", COLUMNS["out_octets"] + ".")
    (data / "nohc.snmprec").write_text("".join(line for line in lines if not line.startswith(hc)), encoding="utf-8")
    with snmpsim(data, tmp) as endpoint:
        yield endpoint


def params(endpoint: tuple[str, int], community: str = "LINUX", **interface: object) -> SnmpParams:
    host, port = endpoint
    return SnmpParams.model_validate({"host": host, "port": port,
                                      "community": f"env:EGOV_TEST_SNMPSIM_{community}",
                                      "interface": interface or {"name": "eth0"}})


def probe_all(settings: SnmpSettings, targets: dict[str, SnmpParams]) -> dict[str, ProbeResult]:
    async def run() -> dict[str, ProbeResult]:
        collector = SnmpCollector(settings)
        try:
            results = await asyncio.gather(*(run_probe(collector, t, p, 5.0) for t, p in targets.items()))
        finally:
            await collector.close()
        return dict(zip(targets, results, strict=True))

    return asyncio.run(run())


def by_family(result: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.family, s.labels): s.value for s in result.samples}


def test_uplink_counters_equal_what_snmpget_reads_from_the_recording(recorded_host: tuple[str, int]) -> None:
    host, port = recorded_host
    expected = net_snmp("snmpget", ["-v2c", "-c", "linux"], f"{host}:{port}", SYS_UPTIME,
                        *[f"{oid}.2" for oid in COLUMNS.values()])
    results = probe_all(SnmpSettings(), {"by-name": params(recorded_host),
                                         "by-index": params(recorded_host, index=2)})
    for result in results.values():
        assert result.up, result
        got = by_family(result)
        assert got[("snmp_uptime_seconds", ())] == number(expected, SYS_UPTIME) / 100
        assert got[("snmp_if_info", ("2", "uplink", "eth0"))] == 1
        for key, oid in COLUMNS.items():
            want = number(expected, f"{oid}.2") * (125_000 if key == "speed" else 1)
            assert got[(FAMILY[key], ("2", "uplink"))] == want, key
        assert not [s for s in result.samples if s.labels[:1] == ("1",)], "only the uplink unless all_interfaces"


def test_every_interface_equals_snmpbulkwalk_when_walking_all(recorded_host: tuple[str, int]) -> None:
    host, port = recorded_host
    walked: dict[str, tuple[str, str]] = {}
    for oid in COLUMNS.values():
        walked |= net_snmp("snmpbulkwalk", ["-v2c", "-c", "linux"], f"{host}:{port}", oid)
    result = probe_all(SnmpSettings(all_interfaces=True, max_repetitions=1),  # several GETBULK rounds
                       {"all": params(recorded_host)})["all"]
    assert result.up, result
    got = by_family(result)
    indexes = sorted({oid.rsplit(".", 1)[1] for oid in walked})
    assert indexes == ["1", "2"]  # lo and eth0
    for index in indexes:
        role = "uplink" if index == "2" else "other"
        for key, column in COLUMNS.items():
            want = number(walked, f"{column}.{index}") * (125_000 if key == "speed" else 1)
            assert got[(FAMILY[key], (index, role))] == want, (key, index)
    assert got[("snmp_if_info", ("1", "other", "lo"))] == 1


def test_each_broken_device_gets_its_reason_and_the_good_one_stays_up(recorded_host: tuple[str, int]) -> None:
    silent = SilentPeer()

    async def run() -> dict[str, ProbeResult]:
        garbage, garbage_port = await garbage_peer()
        collector = SnmpCollector(SnmpSettings(timeout=0.5, retries=1))
        targets = {
            "good": params(recorded_host),
            "wrong-type": params(recorded_host, "WRONGTYPE"),
            "no-hc-counters": params(recorded_host, "NOHC"),
            "unknown-interface": params(recorded_host, name="eth9"),
            "unknown-index": params(recorded_host, index=7),
            "silent": params(("127.0.0.1", silent.port)),
            "malformed": params(("127.0.0.1", garbage_port)),
        }
        try:
            results = await asyncio.gather(*(run_probe(collector, t, p, 4.0) for t, p in targets.items()))
        finally:
            await collector.close()
            garbage.close()
        return dict(zip(targets, results, strict=True))

    try:
        results = asyncio.run(run())
    finally:
        silent.close()
    reasons = {target: (r.up, r.reason) for target, r in results.items()}
    assert reasons == {
        "good": (True, ""),
        "wrong-type": (False, "snmp_wrong_type"),
        "no-hc-counters": (False, "snmp_no_such_object"),
        "unknown-interface": (False, "interface_not_found"),
        "unknown-index": (False, "interface_not_found"),
        "silent": (False, "timeout"),
        "malformed": (False, "snmp_malformed"),
    }, {t: (r.reason, r.detail) for t, r in results.items()}
    assert by_family(results["good"])[("snmp_if_oper_status", ("2", "uplink"))] == 1
    for result in results.values():  # reasons are fixed words; nothing from the device or a secret in them
        assert result.reason.replace("_", "").isalpha() or result.reason == ""
        assert "linux" not in result.detail.lower()

