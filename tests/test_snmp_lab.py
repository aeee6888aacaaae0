"""The lab's simulated routers (agent/lab/snmp.py) read by the agent and by net-snmp's tools, the lab's
faults, and the WAN inventory of the shipped province."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from support.exposition import parse_samples, sample
from support.paths import AGENT, REPO
from support.province import Province, coverage, ops_target
from support.snmp_peers import COLUMNS, FAMILY, SYS_UPTIME, net_snmp, net_snmp_async, number
from support.tools import promtool

from agent.config.loading import load_config
from collectors.api import ProbeResult
from collectors.lab_addresses import AddressPool
from collectors.runner import run_probe
from collectors.snmp.drops import DROP_REASONS
from collectors.snmp.lab import SnmpSimulator
from collectors.snmp.probe import SnmpCollector, SnmpParams, SnmpSettings


def province() -> Province:
    """A district router and two commune routers, each interface named another way (name, alias, index)."""
    p = Province(code="lab-test", levels=["province", "district", "commune"])
    p.unit("d1", "Huyện Một", level="district").unit("c1", "Xã Một", parent="d1").unit("c2", "Xã Hai", parent="d1")
    p.collector("snmp", interval="30s", timeout="3s", settings={"timeout": 1, "retries": 0})
    for target_id, unit, host, interface in (
            ("d1-snmp", "d1", "10.21.1.1", {"name": "GigabitEthernet0/0/0"}),
            ("c1-snmp", "c1", "10.21.1.11", {"alias": "WAN uplink c1 - THDL"}),
            ("c2-snmp", "c2", "10.21.1.12", {"index": 1})):
        p.target(target_id, unit, "snmp", tags=["wan_link"],
                 params={"host": host, "community": "env:EGOV_SNMP_COMMUNITY", "interface": interface})
    return p.kpi("wan_commune_coverage",
                 coverage(tags=["wan_link"], level="commune", unit_up="all", group_by="district"),
                 title_vi="Xã có đường truyền WAN", title_en="Communes with a WAN link up",
                 targets=[ops_target("100%", "=", phase="test")])


def test_agent_counters_equal_snmpget_on_a_lab_router(tmp_path: Path) -> None:
    """``egov-agent lab`` and ``egov-agent once`` as real processes; net-snmp reads the same router
    before and after the agent, and the agent's counters lie between the two readings."""
    province_ = province().write(tmp_path / "province.yml")
    agent_config = tmp_path / "lab" / "agent.yml"
    env = {k: v for k, v in os.environ.items() if k != "EGOV_SNMP_COMMUNITY"}  # the lab brings its own
    with (tmp_path / "lab.log").open("wb") as log:
        lab = subprocess.Popen([*AGENT, "lab", "--config", str(province_), "--write-config", str(agent_config),
                                "--down-ratio", "0"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 30
        while not agent_config.exists():
            assert lab.poll() is None, (tmp_path / "lab.log").read_text()
            assert time.monotonic() < deadline, "the lab did not start within 30 s"
            time.sleep(0.1)
        config = yaml.safe_load(agent_config.read_text(encoding="utf-8"))
        routers = {t["id"]: t["params"] for t in config["targets"]}
        c1 = routers["c1-snmp"]
        assert c1["community"].startswith("file:"), "the lab writes a reference, never the community itself"
        community = Path(c1["community"].removeprefix("file:")).read_text(encoding="utf-8").strip()
        assert community not in agent_config.read_text(encoding="utf-8")
        assert (Path(c1["community"].removeprefix("file:")).stat().st_mode & 0o077) == 0

        control = (agent_config.parent / (agent_config.name + ".control")).read_text().strip()
        request = urllib.request.Request(f"{control}/targets/c2-snmp/down", method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.load(answer) == {"c2-snmp": "down"}

        target = f"{c1['host']}:{c1['port']}"
        cli = ["-v2c", "-c", community]
        oids = [SYS_UPTIME, *[f"{column}.1" for column in COLUMNS.values()]]
        before = net_snmp("snmpget", cli, target, *oids)
        once = subprocess.run([*AGENT, "once", "--config", str(agent_config), "--format", "prometheus"],
                              capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
        after = net_snmp("snmpget", cli, target, *oids)
        assert once.returncode == 0, once.stderr
        assert community not in once.stdout + once.stderr
    finally:
        lab.terminate()
        lab.wait(10)

    samples = parse_samples(once.stdout)
    c1_labels = {"target": "c1-snmp", "ifindex": "1", "role": "uplink"}
    for key, column in COLUMNS.items():
        low, high = number(before, f"{column}.1"), number(after, f"{column}.1")
        scale = 125_000 if key == "speed" else 1
        name = "egov_" + FAMILY[key] + ("_total" if key.endswith(("octets", "errors")) else "")
        assert low * scale <= sample(samples, name, **c1_labels) <= high * scale, key
    assert number(after, f"{COLUMNS['in_octets']}.1") > number(before, f"{COLUMNS['in_octets']}.1"), "traffic flows"
    uptime = sample(samples, "egov_snmp_uptime_seconds", target="c1-snmp")
    assert number(before, SYS_UPTIME) / 100 <= uptime <= number(after, SYS_UPTIME) / 100
    assert sample(samples, "egov_target_up", target="c1-snmp", commune="c1", district="d1") == 1
    assert sample(samples, "egov_target_up", target="c2-snmp") == 0
    assert sample(samples, "egov_target_probe_failures_total", target="c2-snmp", reason="timeout") == 1
    assert sample(samples, "egov_target_up", target="d1-snmp") == 1
    assert sample(samples, "egov_kpi_numerator", kpi="wan_commune_coverage") == 1
    assert sample(samples, "egov_kpi_denominator", kpi="wan_commune_coverage") == 2
    assert sample(samples, "egov_kpi_group_value", kpi="wan_commune_coverage", group="d1") == 0.5
    # The collector's own counter of dropped replies, by reason: none from the lab's well-behaved routers.
    for reason in DROP_REASONS:
        assert sample(samples, "egov_snmp_replies_dropped_total", collector="snmp", reason=reason) == 0
    dropped = "".join(line + "\n" for line in once.stdout.splitlines() if "egov_snmp_replies_dropped" in line)
    lint = subprocess.run([promtool(), "check", "metrics"], input=dropped, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


async def add(simulator: SnmpSimulator, target: str, **interface: object) -> SnmpParams:
    """A lab router for ``target``; the parameters the lab hands the agent, validated as the agent would."""
    os.environ.setdefault("EGOV_SNMP_COMMUNITY", "test-community")
    raw = {"host": f"10.21.9.{len(simulator.routers) + 1}", "community": "env:EGOV_SNMP_COMMUNITY",
           "interface": interface or {"name": "GigabitEthernet0/0/0"}}
    return SnmpParams.model_validate(await simulator.add(target, raw, True))


def values(result: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.family, s.labels): s.value for s in result.samples}


def test_walking_all_interfaces_matches_snmpbulkwalk() -> None:
    async def run() -> None:
        simulator = SnmpSimulator(AddressPool())
        collector = SnmpCollector(SnmpSettings(all_interfaces=True, max_repetitions=2))
        try:
            params = await add(simulator, "bg-x-01-snmp")
            host, port = simulator.endpoint("bg-x-01-snmp")
            cli = ["-v2c", "-c", params.community.reveal()]
            before: dict = {}
            for column in COLUMNS.values():
                before |= await net_snmp_async("snmpbulkwalk", cli, f"{host}:{port}", column)
            result = await run_probe(collector, "bg-x-01-snmp", params, 5.0)
            after: dict = {}
            for column in COLUMNS.values():
                after |= await net_snmp_async("snmpbulkwalk", cli, f"{host}:{port}", column)
        finally:
            await collector.close()
            await simulator.close()
        assert result.up, result
        got = values(result)
        indexes = sorted({oid.rsplit(".", 1)[1] for oid in before})
        assert indexes == ["1", "2", "3", "4"]
        for index in indexes:
            role = "uplink" if index == "1" else "other"
            for key, column in COLUMNS.items():
                scale = 125_000 if key == "speed" else 1
                low, high = number(before, f"{column}.{index}"), number(after, f"{column}.{index}")
                assert low * scale <= got[(FAMILY[key], (index, role))] <= high * scale, (key, index)
        assert got[("snmp_if_oper_status", ("3", "other"))] == 2  # the spare port is shut
        assert got[("snmp_if_info", ("4", "other", "Loopback0"))] == 1

    asyncio.run(run())


def test_a_reboot_is_counted_and_the_interfaces_read_again() -> None:
    async def run() -> None:
        simulator = SnmpSimulator(AddressPool())
        collector = SnmpCollector(SnmpSettings(timeout=1.0, retries=0))
        try:
            params = await add(simulator, "bg-x-02-snmp", alias="WAN uplink bg-x-02 - THDL")
            first = values(await run_probe(collector, "r", params, 5.0))
            await asyncio.sleep(1.1)
            second = await run_probe(collector, "r", params, 5.0)
            await simulator.set_state("bg-x-02-snmp", "reboot")
            walks_before = simulator.routers["bg-x-02-snmp"].requests
            third = await run_probe(collector, "r", params, 5.0)
            walks_after = simulator.routers["bg-x-02-snmp"].requests
        finally:
            await collector.close()
            await simulator.close()
        assert first[("snmp_reboots", ())] == 0 and first[("snmp_uptime_seconds", ())] > 86400
        assert values(second)[("snmp_reboots", ())] == 0
        assert ("snmp_if_utilisation_ratio", ("1", "uplink", "in")) in values(second)
        assert 0 < values(second)[("snmp_if_utilisation_ratio", ("1", "uplink", "in"))] < 1
        rebooted = values(third)
        assert third.up and rebooted[("snmp_reboots", ())] == 1
        assert rebooted[("snmp_uptime_seconds", ())] < 5
        assert rebooted[("snmp_if_in_octets", ("1", "uplink"))] < first[("snmp_if_in_octets", ("1", "uplink"))]
        # After the reboot: GET (reboot seen), ifNumber, the name walk, then the GET again.
        assert walks_after - walks_before >= 4
        assert ("snmp_if_utilisation_ratio", ("1", "uplink", "in")) not in rebooted  # no rate across a reset

    asyncio.run(run())


def test_lab_faults_as_the_collector_sees_them() -> None:
    async def run() -> dict[str, object]:
        simulator = SnmpSimulator(AddressPool(), slow_delay=0.6, flap_period=1.0)
        collector = SnmpCollector(SnmpSettings(timeout=0.3, retries=0))
        seen: dict[str, object] = {}
        try:
            targets = {state: await add(simulator, f"bg-f-{i:02d}-snmp") for i, state in
                       enumerate(("uplink_down", "down", "slow", "flapping", "up"))}
            for state, params in targets.items():
                await run_probe(collector, state, params, 3.0)  # learn the interfaces first
                await simulator.set_state(f"bg-f-{list(targets).index(state):02d}-snmp", state)
            with pytest.raises(ValueError):
                await simulator.set_state("bg-f-00-snmp", "on-fire")
            probes = await asyncio.gather(*(run_probe(collector, s, p, 3.0) for s, p in targets.items()
                                            if s != "slow"))
            seen = dict(zip([s for s in targets if s != "slow"], probes, strict=True))
            slow_collector = SnmpCollector(SnmpSettings(timeout=1.0, retries=0))
            started = time.monotonic()
            seen["slow"] = await run_probe(slow_collector, "slow", targets["slow"], 3.0)
            seen["slow_seconds"] = time.monotonic() - started
            await slow_collector.close()
            flaps = []
            for _ in range(6):
                flaps.append((await run_probe(collector, "flapping", targets["flapping"], 3.0)).up)
                await asyncio.sleep(0.25)
            seen["flaps"] = flaps
            seen["states"] = simulator.states()
        finally:
            await collector.close()
            await simulator.close()
        return seen

    seen = asyncio.run(run())
    uplink_down = seen["uplink_down"]
    assert (uplink_down.up, uplink_down.reason) == (False, "uplink_down")
    assert values(uplink_down)[("snmp_if_oper_status", ("1", "uplink"))] == 2  # answered: the gauges are there
    assert (seen["down"].up, seen["down"].reason) == (False, "timeout")
    assert seen["up"].up
    assert seen["slow"].up and seen["slow_seconds"] >= 0.6
    assert True in seen["flaps"] and False in seen["flaps"]
    assert seen["states"]["bg-f-01-snmp"] == "down"


def test_the_wan_inventory_pairs_icmp_and_snmp_per_unit() -> None:
    loaded = load_config(REPO / "config" / "provinces" / "bac-giang.yml", resolve_secrets=False)
    config = loaded.config
    units = {}
    stack = list(config.units)
    while stack:
        unit = stack.pop()
        units[unit.id] = unit.level
        stack += unit.children
    wan = [t for t in config.targets if "wan_link" in t.tags]
    per_unit: dict[str, dict[str, str]] = {}
    for target in wan:
        per_unit.setdefault(target.unit, {})[target.collector] = str(loaded.target_params[target.id].host)
        if target.collector == "snmp":
            assert target.params["community"] == "env:EGOV_SNMP_COMMUNITY"  # a reference, never the community
            assert target.params["interface"] == {"name": "GigabitEthernet0/0/0"}
    levels = sorted(units[u] for u in per_unit)
    assert (levels.count("commune"), levels.count("district"), levels.count("department")) == (230, 10, 22)
    assert all(set(p) == {"icmp", "snmp"} and p["icmp"] == p["snmp"] for p in per_unit.values())
    assert len({p["snmp"] for p in per_unit.values()}) == 262  # one address per router
    seed = (REPO.parent / "shared" / "seeds" / "001_ab339fb7d2214235.txt")
    kpis = {k.id: k for k in config.kpis}
    for kpi_id, level in (("wan_commune_coverage_2020", "commune"), ("wan_fibre_district_coverage", "district"),
                          ("wan_fibre_dept_coverage", "department")):
        measure = kpis[kpi_id].measure
        assert (measure.kind, measure.select.level, measure.select.tags, measure.unit_up) == \
            ("coverage", level, ["wan_link"], "all")
        if seed.exists():  # the plan text the citation quotes, verbatim
            assert kpis[kpi_id].citation.quote in seed.read_text(encoding="utf-8")
    assert kpis["wan_commune_coverage_2020"].measure.group_by == "district"
    assert kpis["wan_link_availability_30d"].measure.kind == "availability"
