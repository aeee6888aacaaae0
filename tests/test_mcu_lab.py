"""The MCU collector against the lab's simulated MCU (agent/lab/mcu.py) over HTTP (Jitsi Videobridge's
/colibri/stats and a generic JSON API with credentials) and SNMPv2c, read by the real agent: what it
exports equals what the MCU serves (read with urllib and net-snmp's snmpget before and after); the
meetings counter survives an MCU restart; registrations follow the lab's SIP endpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.agent_process import AgentProcess
from support.exposition import parse_samples, sample
from support.paths import AGENT, REPO
from support.province import Province
from support.snmp_peers import net_snmp

from collectors.lab_addresses import AddressPool
from collectors.mcu.lab import McuSimulator
from collectors.mcu.probe import McuCollector, McuParams, McuSettings
from collectors.runner import run_probe

PASSWORD = "mcu-lab-password-59"
os.environ.update(EGOV_TEST_MCU_PASSWORD=PASSWORD, EGOV_TEST_MCU_WRONG="not-the-password")
OIDS = {"active_conferences": "1.3.6.1.4.1.59059.1.1.0", "ports_in_use": "1.3.6.1.4.1.59059.1.2.0",
        "ports_total": "1.3.6.1.4.1.59059.1.3.0", "registered_endpoints": "1.3.6.1.4.1.59059.1.4.0",
        "meetings_held": "1.3.6.1.4.1.59059.1.5.0", "endpoint_ids": "1.3.6.1.4.1.59059.2.1.2"}
GENERIC_FIELDS = {"active_conferences": "/conferences/active", "largest_conference": "conferences.largest",
                  "ports_in_use": "/ports/in_use", "ports_total": "ports.total",
                  "meetings_held": "counters.conferences_held", "endpoint_ids": "registrations.*.id"}



def province() -> Province:
    """Two communes' SIP endpoints and three MCUs at the THDL: Jitsi, a generic JSON API and SNMP."""
    p = Province(code="mcu-test", levels=["province", "commune", "site"])
    p.unit("thdl", "Trung tâm THDL", level="site").unit("c1", "Xã Một").unit("c2", "Xã Hai")
    p.collector("sip", interval="30s", timeout="2s").collector("mcu", interval="1s", timeout="1s")
    p.target("c1-sip", "c1", "sip", params={"host": "10.30.1.1", "user": "c1"})
    p.target("c2-sip", "c2", "sip", params={"host": "10.30.1.2", "user": "c2", "transport": "tcp"})
    p.target("mcu-jitsi", "thdl", "mcu", tags=["vc_mcu"], params={
        "adapter": "http", "url": "http://10.30.0.1:8080/colibri/stats", "profile": "jitsi_videobridge"})
    p.target("mcu-generic", "thdl", "mcu", params={
        "adapter": "http", "url": "https://mcu.example.vn/api/status",
        "auth": {"kind": "basic", "username": "monitor", "password": "env:EGOV_TEST_MCU_PASSWORD"},
        "fields": GENERIC_FIELDS, "expected_endpoints": ["c1", "c2", "c9"]})
    return p.target("mcu-snmp", "thdl", "mcu", params={
        "adapter": "snmp", "host": "10.30.0.3", "community": "env:EGOV_SNMP_COMMUNITY", "oids": OIDS,
        "expected_endpoints": ["c1", "c2"]})


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict]:
    """``egov-agent lab`` on the test province; yields the agent configuration it wrote (as data)
    with the path under ``_path`` and the control URL under ``_control``."""
    province_ = province().write(tmp_path / "province.yml")
    agent_config = tmp_path / "lab" / "agent.yml"
    env = {k: v for k, v in os.environ.items() if k != "EGOV_SNMP_COMMUNITY"}  # the lab brings its own
    with (tmp_path / "lab.log").open("wb") as log:
        proc = subprocess.Popen([*AGENT, "lab", "--config", str(province_), "--write-config", str(agent_config),
                                 "--down-ratio", "0"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 30
        while not agent_config.exists():
            assert proc.poll() is None, (tmp_path / "lab.log").read_text()
            assert time.monotonic() < deadline, "the lab did not start within 30 s"
            time.sleep(0.1)
        data = yaml.safe_load(agent_config.read_text(encoding="utf-8"))
        data["_path"] = agent_config
        data["_control"] = (agent_config.parent / (agent_config.name + ".control")).read_text().strip()
        yield data
    finally:
        proc.terminate()
        proc.wait(10)


def params_of(lab: dict, target: str) -> dict:
    return next(t["params"] for t in lab["targets"] if t["id"] == target)


def set_state(lab: dict, target: str, state: str) -> None:
    request = urllib.request.Request(f"{lab['_control']}/targets/{target}/{state}", method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.load(answer) == {target: state}


def get_json(url: str, password: str | None = None) -> dict:
    headers = {}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"monitor:{password}".encode()).decode()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:
        return json.load(answer)


def snmp_read(lab: dict) -> dict[str, object]:
    p = params_of(lab, "mcu-snmp")
    community = Path(p["community"].removeprefix("file:")).read_text(encoding="utf-8").strip()
    cli, target = ["-v2c", "-c", community], f"{p['host']}:{p['port']}"
    scalars = net_snmp("snmpget", cli, target, *[oid for q, oid in OIDS.items() if q != "endpoint_ids"])
    out: dict[str, object] = {q: int(scalars[oid][1]) for q, oid in OIDS.items() if q != "endpoint_ids"}
    walk = subprocess.run(["snmpwalk", *cli, "-Oqv", "-t", "2", target, OIDS["endpoint_ids"]],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    # The column is the MIB's last: net-snmp ends the walk with an endOfMibView line, not a value.
    out["endpoint_ids"] = sorted(line.strip('"') for line in walk.splitlines() if line.startswith('"'))
    return out


def test_the_agent_exports_what_the_lab_mcu_serves(lab: dict) -> None:
    set_state(lab, "c2-sip", "down")  # the codec at c2 is off: the MCU no longer lists it
    jitsi_url, generic_url = params_of(lab, "mcu-jitsi")["url"], params_of(lab, "mcu-generic")["url"]
    assert params_of(lab, "mcu-generic")["auth"]["password"] == "env:EGOV_TEST_MCU_PASSWORD"
    before = (get_json(jitsi_url), get_json(generic_url, PASSWORD), snmp_read(lab))
    once = subprocess.run([*AGENT, "once", "--config", str(lab["_path"]), "--format", "prometheus"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    after = (get_json(jitsi_url), get_json(generic_url, PASSWORD), snmp_read(lab))
    assert once.returncode == 0, once.stderr
    assert PASSWORD not in once.stdout + once.stderr
    samples = parse_samples(once.stdout)

    def between(name: str, target: str, low: float, high: float) -> None:
        got = sample(samples, name, target=target)
        assert low <= got <= high, (name, target, low, got, high)

    def one_of(name: str, target: str, *allowed: float) -> None:
        got = sample(samples, name, target=target)
        assert got in allowed, (name, target, got, allowed)

    (j0, g0, s0), (j1, g1, s1) = before, after
    for target in ("mcu-jitsi", "mcu-generic", "mcu-snmp"):
        assert sample(samples, "egov_target_up", target=target, site="thdl") == 1
        assert sample(samples, "egov_mcu_meetings_held_resets_total", target=target) == 0
    # Jitsi Videobridge profile: conferences, participants, largest_conference, total_conferences_created.
    one_of("egov_mcu_active_conferences", "mcu-jitsi", j0["conferences"], j1["conferences"])
    one_of("egov_mcu_ports_in_use", "mcu-jitsi", j0["participants"], j1["participants"])
    one_of("egov_mcu_largest_conference_participants", "mcu-jitsi", j0["largest_conference"],
           j1["largest_conference"])
    between("egov_mcu_meetings_held_total", "mcu-jitsi", j0["total_conferences_created"],
            j1["total_conferences_created"])
    assert not [n for (n, ls) in samples if n == "egov_mcu_ports_capacity" and ("target", "mcu-jitsi") in ls]
    # The generic API through configured JSON pointers and dotted paths.
    one_of("egov_mcu_active_conferences", "mcu-generic", g0["conferences"]["active"], g1["conferences"]["active"])
    one_of("egov_mcu_ports_in_use", "mcu-generic", g0["ports"]["in_use"], g1["ports"]["in_use"])
    assert sample(samples, "egov_mcu_ports_capacity", target="mcu-generic") == g1["ports"]["total"]
    in_use = sample(samples, "egov_mcu_ports_in_use", target="mcu-generic")
    assert sample(samples, "egov_mcu_port_utilisation_ratio", target="mcu-generic") == in_use / g1["ports"]["total"]
    between("egov_mcu_meetings_held_total", "mcu-generic", g0["counters"]["conferences_held"],
            g1["counters"]["conferences_held"])
    assert [r["id"] for r in g1["registrations"]] == ["c1"]
    assert sample(samples, "egov_mcu_registered_endpoints", target="mcu-generic") == 1
    assert sample(samples, "egov_mcu_endpoint_registered", target="mcu-generic", endpoint="c1") == 1
    assert sample(samples, "egov_mcu_endpoint_registered", target="mcu-generic", endpoint="c2") == 0
    assert sample(samples, "egov_mcu_endpoint_registered", target="mcu-generic", endpoint="c9") == 0
    assert sample(samples, "egov_mcu_unexpected_endpoints", target="mcu-generic") == 0
    # SNMP: the same quantities at the configured OIDs, as net-snmp's snmpget reads them.
    one_of("egov_mcu_active_conferences", "mcu-snmp", s0["active_conferences"], s1["active_conferences"])
    one_of("egov_mcu_ports_in_use", "mcu-snmp", s0["ports_in_use"], s1["ports_in_use"])
    assert sample(samples, "egov_mcu_ports_capacity", target="mcu-snmp") == s1["ports_total"]
    assert sample(samples, "egov_mcu_registered_endpoints", target="mcu-snmp") == s1["registered_endpoints"] == 1
    between("egov_mcu_meetings_held_total", "mcu-snmp", s0["meetings_held"], s1["meetings_held"])
    assert s1["endpoint_ids"] == ["c1"]
    assert sample(samples, "egov_mcu_endpoint_registered", target="mcu-snmp", endpoint="c1") == 1
    assert sample(samples, "egov_mcu_endpoint_registered", target="mcu-snmp", endpoint="c2") == 0
    # The SIP endpoints themselves, for the record: c1 answers, c2 is off.
    assert sample(samples, "egov_target_up", target="c1-sip") == 1
    assert sample(samples, "egov_target_up", target="c2-sip") == 0


def test_the_meetings_counter_survives_an_mcu_restart(lab: dict, tmp_path: Path) -> None:
    agent = AgentProcess(lab["_path"], tmp_path)
    try:
        agent.wait_ready()

        def read() -> dict:
            samples = parse_samples(agent.metrics())
            return {t: (sample(samples, "egov_mcu_meetings_held_total", target=t),
                        sample(samples, "egov_mcu_meetings_held_resets_total", target=t))
                    for t in ("mcu-jitsi", "mcu-snmp")}

        first = wait_for(read, lambda r: True)
        assert all(held > 100 and resets == 0 for held, resets in first.values()), first
        set_state(lab, "mcu-jitsi", "restart")
        set_state(lab, "mcu-snmp", "restart")
        raw_after = get_json(params_of(lab, "mcu-jitsi")["url"])["total_conferences_created"]
        assert raw_after < first["mcu-jitsi"][0]  # the MCU's own counter went back to zero
        second = wait_for(read, lambda r: all(resets == 1 for _, resets in r.values()))
        for target, (held, _) in second.items():
            assert held >= first[target][0], (target, first, second)  # exported as a counter: never back
    finally:
        agent.stop()


def wait_for(read, done, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = read()
        except AssertionError:  # a series not there yet
            last = None
        if last is not None and done(last):
            return last
        time.sleep(0.3)
    raise AssertionError(f"not reached within {timeout}s; last reading {last}")


# --- faults, in process: the lab's MCU simulator and the collector on one loop -------------------------


def fault_results() -> dict[str, tuple[bool, str, str]]:
    async def run() -> dict[str, tuple[bool, str, str]]:
        simulator = McuSimulator(AddressPool(), slow_delay=5.0)
        collector = McuCollector(McuSettings())
        out = {}
        try:
            generic = {"adapter": "http", "url": "http://10.30.0.9/api/status", "fields": GENERIC_FIELDS,
                       "auth": {"kind": "basic", "username": "monitor", "password": "env:EGOV_TEST_MCU_PASSWORD"}}
            raw = await simulator.add("m", generic, True)
            params = McuParams.model_validate(raw)

            async def probe(name: str, p: McuParams = params) -> None:
                result = await run_probe(collector, "m", p, 1.0)
                out[name] = (result.up, result.reason, result.detail)

            await probe("up")
            wrong = {**raw, "auth": {**raw["auth"], "password": "env:EGOV_TEST_MCU_WRONG"}}
            await probe("wrong_password", McuParams.model_validate(wrong))
            await probe("missing_field", McuParams.model_validate({**raw, "fields": {"ports_total": "/ports/free"}}))
            await probe("wrong_type", McuParams.model_validate({**raw, "fields": {"ports_total": "system.model"}}))
            await probe("not_a_list", McuParams.model_validate({**raw, "fields": {"endpoint_ids": "ports"}}))
            for state in ("garbage", "error", "slow", "down"):
                await simulator.set_state("m", state)
                await probe(state)
        finally:
            await collector.close()
            await simulator.close()
        return out

    return asyncio.run(run())


def test_http_faults_have_their_reasons() -> None:
    results = fault_results()
    assert results["up"][:2] == (True, "")
    expected = {"wrong_password": "auth_error", "missing_field": "missing_field", "wrong_type": "wrong_type",
                "not_a_list": "wrong_type", "garbage": "bad_response", "error": "http_status", "slow": "timeout",
                "down": "refused"}
    assert {k: results[k][:2] for k in expected} == {k: (False, v) for k, v in expected.items()}
    assert "/ports/free" in results["missing_field"][2]
    for _, _, detail in results.values():
        assert PASSWORD not in detail and "not-the-password" not in detail


@pytest.mark.parametrize(("params", "message"), [
    ({"adapter": "snmp", "host": "10.1.1.1", "community": "env:EGOV_TEST_MCU_PASSWORD"}, "needs oids"),
    ({"adapter": "snmp", "host": "10.1.1.1", "oids": {"ports_in_use": "1.3.6.1.4.1.9.1.0"}}, "needs a community"),
    ({"adapter": "snmp", "host": "10.1.1.1", "community": "env:EGOV_TEST_MCU_PASSWORD",
      "oids": {"ports_in_use": "not.an.oid"}}, "expected a numeric OID"),
    ({"adapter": "snmp", "host": "10.1.1.1", "community": "env:EGOV_TEST_MCU_PASSWORD",
      "oids": {"ports_in_use": "1.3.6.1.4.1.9.1.0"}, "url": "http://10.1.1.1/"}, "url: only for adapter http"),
    ({"adapter": "http", "url": "http://10.1.1.1/"}, "needs fields"),
    ({"adapter": "http", "url": "http://10.1.1.1/", "profile": "jitsi_videobridge",
      "community": "env:EGOV_TEST_MCU_PASSWORD"},
     "community: only for adapter snmp"),
    ({"adapter": "http", "url": "http://monitor:pw@10.1.1.1/", "profile": "jitsi_videobridge"}, "not in the URL"),
    ({"adapter": "http", "url": "http://10.1.1.1/", "profile": "jitsi_videobridge", "expected_endpoints": ["c1"]},
     "needs endpoint_ids"),
    ({"adapter": "http", "url": "http://10.1.1.1/", "fields": {"conferences": "a.b"}}, "Input should be"),
    ({"adapter": "http", "url": "http://10.1.1.1/", "fields": {"ports_total": "a..b"}}, "empty segment"),
])
def test_bad_parameters_are_refused_with_a_reason(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        McuParams.model_validate(params)
