"""The snmp collector against net-snmp's snmpd: SNMPv3 authPriv (SHA/AES), wrong keys, and a view
that hides the 64-bit counters (a real agent's noSuchObject)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.snmp_peers import COLUMNS, FAMILY, SYS_UPTIME, net_snmp, number, snmpd

from collectors.api import ProbeResult
from collectors.runner import run_probe
from collectors.snmp.probe import SnmpCollector, SnmpParams, SnmpSettings

USER, AUTH, PRIV = "egov-monitor", "auth-key-2019-kh59", "priv-key-2019-kh59"
os.environ.update(EGOV_TEST_V3_AUTH=AUTH, EGOV_TEST_V3_PRIV=PRIV, EGOV_TEST_V3_WRONG="not-the-key-at-all",
                  EGOV_TEST_LIMITED="limited-view")
CONFIG = f"""\
createUser {USER} SHA "{AUTH}" AES "{PRIV}"
rouser {USER} priv
view noifx included .1.3.6.1.2.1.1
view noifx included .1.3.6.1.2.1.2
rocommunity limited-view 127.0.0.1 -V noifx
"""
V3_CLI = ["-v3", "-l", "authPriv", "-u", USER, "-a", "SHA", "-A", AUTH, "-x", "AES", "-X", PRIV]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("snmpd")
    with snmpd(CONFIG, tmp, V3_CLI) as endpoint:
        yield endpoint


def loopback_index(endpoint: tuple[str, int]) -> str:
    """ifIndex of ``lo`` on this machine, as snmpd reports it."""
    names = net_snmp("snmpwalk", V3_CLI, f"{endpoint[0]}:{endpoint[1]}", "1.3.6.1.2.1.31.1.1.1.1")
    return next(oid.rsplit(".", 1)[1] for oid, (_, name) in names.items() if name == "lo")


def v3_params(endpoint: tuple[str, int], auth: str = "AUTH", priv: str = "PRIV") -> SnmpParams:
    return SnmpParams.model_validate({
        "host": endpoint[0], "port": endpoint[1], "version": 3,
        "v3": {"user": USER, "auth_key": f"env:EGOV_TEST_V3_{auth}", "priv_key": f"env:EGOV_TEST_V3_{priv}",
               "auth_protocol": "sha", "priv_protocol": "aes"},
        "interface": {"name": "lo"},
    })


def probe(params: SnmpParams, timeout: float = 5.0) -> ProbeResult:
    async def run() -> ProbeResult:
        collector = SnmpCollector(SnmpSettings(timeout=1.0, retries=0))
        try:
            return await run_probe(collector, "router", params, timeout)
        finally:
            await collector.close()

    return asyncio.run(run())


def test_v3_authpriv_reads_the_counters_snmpget_reads(agent: tuple[str, int]) -> None:
    index = loopback_index(agent)
    oids = [SYS_UPTIME, *[f"{c}.{index}" for c in COLUMNS.values()]]
    before = net_snmp("snmpget", V3_CLI, f"{agent[0]}:{agent[1]}", *oids)
    result = probe(v3_params(agent))
    after = net_snmp("snmpget", V3_CLI, f"{agent[0]}:{agent[1]}", *oids)
    assert result.up, (result.reason, result.detail)
    got = {(s.family, s.labels): s.value for s in result.samples}
    labels = (index, "uplink")
    for key, column in COLUMNS.items():
        low, high = number(before, f"{column}.{index}"), number(after, f"{column}.{index}")
        if key == "speed":
            low, high = low * 125_000, high * 125_000  # ifHighSpeed Mbit/s in bytes/s
        assert low <= got[(FAMILY[key], labels)] <= high, key  # lo's counters grow between the reads
    assert number(before, SYS_UPTIME) / 100 <= got[("snmp_uptime_seconds", ())] <= number(after, SYS_UPTIME) / 100


def test_a_wrong_auth_key_is_an_auth_error_and_a_wrong_priv_key_a_timeout(agent: tuple[str, int]) -> None:
    # snmpd answers a wrong authentication key with a usmStatsWrongDigests report: a labelled auth error.
    wrong_auth = probe(v3_params(agent, auth="WRONG"))
    assert (wrong_auth.up, wrong_auth.reason) == (False, "snmp_auth_error")
    assert AUTH not in wrong_auth.detail and "not-the-key" not in wrong_auth.detail
    # With the right auth key and a wrong privacy key the request authenticates but decrypts to
    # garbage, which snmpd drops without a report: net-snmp's own snmpget times out the same way.
    wrong_priv = probe(v3_params(agent, priv="WRONG"))
    assert (wrong_priv.up, wrong_priv.reason) == (False, "timeout")


def test_a_view_without_the_64_bit_counters_is_no_such_object(agent: tuple[str, int], tmp_path: Path) -> None:
    target = f"{agent[0]}:{agent[1]}"
    hidden = net_snmp("snmpget", ["-v2c", "-c", "limited-view"], target, f"{COLUMNS['in_octets']}.1")
    assert hidden[f"{COLUMNS['in_octets']}.1"][0] == "No Such Object available on this agent at this OID"
    result = probe(SnmpParams.model_validate({"host": agent[0], "port": agent[1], "community": "env:EGOV_TEST_LIMITED",
                                              "interface": {"name": "lo"}}))  # found by ifDescr: no ifName
    assert (result.up, result.reason) == (False, "snmp_no_such_object"), result.detail
