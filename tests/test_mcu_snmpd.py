"""The MCU collector's SNMP adapter against net-snmp's snmpd serving an MCU's objects (``override``
directives at a private enterprise arc) over SNMPv3 authPriv: values and the registrations table as
snmpget and snmpwalk read them, a wrong key, an OID the agent lacks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from support.snmp_peers import net_snmp, snmpd

from collectors.api import ProbeResult
from collectors.mcu.probe import McuCollector, McuParams, McuSettings
from collectors.runner import run_probe

USER, AUTH, PRIV = "egov-mcu", "mcu-auth-key-2025", "mcu-priv-key-2025"
os.environ.update(EGOV_TEST_MCU_AUTH=AUTH, EGOV_TEST_MCU_PRIV=PRIV, EGOV_TEST_MCU_BAD="not-the-mcu-key")
ARC = "1.3.6.1.4.1.59059"
CONFIG = f"""\
createUser {USER} SHA "{AUTH}" AES "{PRIV}"
rouser {USER} priv
override .{ARC}.1.1.0 unsigned 3
override .{ARC}.1.2.0 unsigned 17
override .{ARC}.1.3.0 unsigned 120
override .{ARC}.1.5.0 counter 4321
override .{ARC}.2.1.2.1 octet_str "bg-tp-01"
override .{ARC}.2.1.2.2 octet_str "bg-hh-07"
override .{ARC}.2.1.2.3 octet_str "bg-vc-ubnd"
override .{ARC}.3.1.0 octet_str "not a number"
"""
V3_CLI = ["-v3", "-l", "authPriv", "-u", USER, "-a", "SHA", "-A", AUTH, "-x", "AES", "-X", PRIV]
OIDS = {"active_conferences": f"{ARC}.1.1.0", "ports_in_use": f"{ARC}.1.2.0", "ports_total": f"{ARC}.1.3.0",
        "meetings_held": f"{ARC}.1.5.0", "endpoint_ids": f"{ARC}.2.1.2"}


@pytest.fixture(scope="module")
def mcu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with snmpd(CONFIG, tmp_path_factory.mktemp("snmpd-mcu"), V3_CLI) as endpoint:
        yield endpoint


def params(endpoint: tuple[str, int], auth: str = "AUTH", **oids: str) -> McuParams:
    return McuParams.model_validate({
        "adapter": "snmp", "host": endpoint[0], "port": endpoint[1], "version": 3, "retries": 0,
        "v3": {"user": USER, "auth_key": f"env:EGOV_TEST_MCU_{auth}", "priv_key": "env:EGOV_TEST_MCU_PRIV"},
        "oids": {**OIDS, **oids}, "expected_endpoints": ["bg-tp-01", "bg-yt-21"],
    })


def probe(p: McuParams) -> ProbeResult:
    async def run() -> ProbeResult:
        collector = McuCollector(McuSettings(snmp_timeout=1.0))
        try:
            return await run_probe(collector, "mcu", p, 3.0)
        finally:
            await collector.close()

    return asyncio.run(run())


def test_v3_reads_what_snmpget_and_snmpwalk_read(mcu: tuple[str, int]) -> None:
    target = f"{mcu[0]}:{mcu[1]}"
    scalars = net_snmp("snmpget", V3_CLI, target, *[o for q, o in OIDS.items() if q != "endpoint_ids"])
    walked = net_snmp("snmpwalk", V3_CLI, target, OIDS["endpoint_ids"])
    result = probe(params(mcu))
    assert result.up, result
    got = {(s.family, s.labels): s.value for s in result.samples}
    assert got[("mcu_active_conferences", ())] == int(scalars[OIDS["active_conferences"]][1]) == 3
    assert got[("mcu_ports_in_use", ())] == int(scalars[OIDS["ports_in_use"]][1])
    assert got[("mcu_ports_capacity", ())] == int(scalars[OIDS["ports_total"]][1])
    assert got[("mcu_port_utilisation_ratio", ())] == 17 / 120
    assert got[("mcu_meetings_held", ())] == int(scalars[OIDS["meetings_held"]][1]) == 4321
    ids = sorted(v for kind, v in walked.values() if kind == "STRING")
    assert ids == ["bg-hh-07", "bg-tp-01", "bg-vc-ubnd"]
    assert got[("mcu_registered_endpoints", ())] == len(ids)
    assert got[("mcu_endpoint_registered", ("bg-tp-01",))] == 1
    assert got[("mcu_endpoint_registered", ("bg-yt-21",))] == 0
    assert got[("mcu_unexpected_endpoints", ())] == 2


def test_snmp_faults_have_their_reasons(mcu: tuple[str, int]) -> None:
    wrong_key = probe(params(mcu, auth="BAD"))
    assert (wrong_key.up, wrong_key.reason) == (False, "snmp_auth_error")
    assert AUTH not in wrong_key.detail and "not-the-mcu-key" not in wrong_key.detail
    missing = probe(params(mcu, ports_total=f"{ARC}.1.4.0"))
    assert (missing.up, missing.reason) == (False, "snmp_no_such_object")
    assert f"{ARC}.1.4.0" in missing.detail
    text = probe(params(mcu, ports_total=f"{ARC}.3.1.0"))
    assert (text.up, text.reason) == (False, "snmp_wrong_type")
