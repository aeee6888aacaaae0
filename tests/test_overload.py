"""The agent's own overload is not the province's outage.

A probe that found no answer while the agent's loop was late is an overrun (counted, not a failure);
a target that was up goes down only after ``down_after`` failed probes in a row; a starved agent says
it is overloaded. The last test starves a real agent process of CPU while the lab, in a process of
its own, keeps every router up: coverage must stay whole.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import AGENT, REPO, free_port, parse_samples, sample, write_config
from cpu_starve import Starved

from agent.config import load_config
from agent.lab.addresses import AddressPool
from agent.lab.snmp import SnmpSimulator, ensure_community
from agent.scheduler import Scheduler
from agent.service import Agent
from agent.store import Store
from agent.yamlsource import ConfigError
from collectors.base import ProbeResult

LAB_NETWORK = "127.44.0.0/16"
COMMUNES = 200  # 10 districts of 20 communes, one router each
STARVE_SECONDS = 60.0
STARVE_SHARE = 0.03  # of one CPU: the agent wants about four times this for 200 routers every 10 s


def province(communes: int, snmp: str) -> str:
    districts = []
    for d in range(communes // 20):
        children = ", ".join(f"{{id: c{d}-{c}, name_vi: Xã {d}-{c}, level: commune}}" for c in range(20))
        districts.append(f"      - {{id: d{d}, name_vi: Huyện {d}, level: district, children: [{children}]}}")
    targets = "\n".join(
        f"  - {{id: c{d}-{c}-snmp, unit: c{d}-{c}, collector: snmp, tags: [wan_link], params: {{host: 10.9.{d}.{c + 1},"
        f' community: "env:EGOV_SNMP_COMMUNITY", interface: {{index: 1}}}}}}'
        for d in range(communes // 20) for c in range(20))
    return f"""\
province: {{code: starve, name_vi: Tỉnh Thử, name_en: Test Province}}
levels: [province, district, commune]
units:
  - id: p
    name_vi: Tỉnh Thử
    level: province
    children:
{chr(10).join(districts)}
collectors:
  snmp: {snmp}
targets:
{targets}
kpis:
  - id: wan
    class: direct
    title_vi: Xã có đường truyền WAN
    title_en: Communes with a WAN link up
    measure: {{kind: coverage, select: {{tags: [wan_link], level: commune}}, unit_up: all, group_by: district}}
    targets: [{{phase: test, deadline: 2030-12-31, comparator: "=", value: 100%, origin: ops}}]
"""


# -- in one process: the loop blocked on purpose ----------------------------------------------------


def test_a_timeout_while_the_loop_was_late_is_an_overrun_and_one_failure_is_not_down(tmp_path: Path) -> None:
    """A real router on loopback goes silent. While the agent's loop is blocked past the probe's timeout
    the silence is not the router's fault as far as the agent can tell: an overrun, the router stays up.
    With the loop on time, the first silent probe is a failure (availability counts it) but the router is
    still up (down_after 2); the second takes it down."""
    ensure_community()

    async def run() -> dict:
        simulator = SnmpSimulator(AddressPool(ipaddress.IPv4Network(LAB_NETWORK)))
        params = await simulator.add("c0-0-snmp", {"host": "10.9.0.1", "interface": {"index": 1}}, True)
        body = yaml.safe_load(province(20, "{interval: 30s, timeout: 1s, down_after: 2, "
                                           "settings: {timeout: 0.4, retries: 0}}"))
        body["targets"] = [dict(body["targets"][0], params=params)]
        config = tmp_path / "agent.yml"
        config.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
        agent = Agent(load_config(config))
        scheduler = Scheduler(agent.loaded, agent.store, agent.collectors, agent.targets)
        watching = asyncio.create_task(scheduler.watch.run())
        target = agent.targets[0]
        seen = {}
        try:
            await asyncio.sleep(0.3)
            seen["first"] = (await scheduler.probe(target)).up, agent.states()[target.id].up
            await simulator.set_state(target.id, "down")
            asyncio.get_running_loop().call_later(0.1, time.sleep, 1.6)  # the loop stalls: a blocking call
            result = await scheduler.probe(target)
            state = agent.states()[target.id]
            seen["stalled"] = (result.reason, state.up, state.probes_total, state.up_total)
            seen["stalled_metrics"] = parse_samples(agent.exposition.render(None)[0].decode())
            await asyncio.sleep(0.3)
            result = await scheduler.probe(target)
            state = agent.states()[target.id]
            seen["one_failure"] = (result.reason, state.up, state.probes_total, state.up_total, state.failed_in_row)
            seen["kpi_one_failure"] = next(ev for ev in agent.evaluate() if ev.kpi.id == "wan").numerator
            await scheduler.probe(target)
            state = agent.states()[target.id]
            seen["two_failures"] = (state.up, state.probes_total, state.up_total)
            seen["kpi_two_failures"] = next(ev for ev in agent.evaluate() if ev.kpi.id == "wan").numerator
        finally:
            watching.cancel()
            await agent.close()
            await simulator.close()
        return seen

    seen = asyncio.run(run())
    assert seen["first"] == (True, True)
    assert seen["stalled"] == ("snmp_timeout", True, 1, 1), "the stalled probe must change nothing but the counter"
    metrics = seen["stalled_metrics"]
    assert sample(metrics, "egov_collector_overrun_total", collector="snmp") == 1
    assert sample(metrics, "egov_agent_overloaded") == 1
    assert sample(metrics, "egov_agent_loop_lag_seconds") >= 1.0
    assert sample(metrics, "egov_target_up", target="c0-0-snmp") == 1
    assert seen["one_failure"] == ("snmp_timeout", True, 2, 1, 1), "one failure: counted, not yet down"
    assert seen["two_failures"] == (False, 3, 1)
    assert (seen["kpi_one_failure"], seen["kpi_two_failures"]) == (1, 0), "coverage reads the debounced state"


def test_down_after_one_keeps_the_first_failure_down_and_zero_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "p.yml", province(20, "{interval: 30s, timeout: 1s, down_after: 0}"))
    with pytest.raises(ConfigError, match=r"collectors.*snmp.*down_after"):
        load_config(config)
    write_config(config, province(20, "{interval: 30s, timeout: 1s}"))
    assert load_config(config).config.collectors["snmp"].down_after == 2
    store = Store()
    assert store.record("a", "snmp", ProbeResult(True), 0.01, down_after=1)
    assert not store.record("a", "snmp", ProbeResult(False, "snmp_timeout"), 0.01, down_after=1)
    assert not store.record("b", "snmp", ProbeResult(False, "snmp_timeout"), 0.01, down_after=2), \
        "never seen up: down at its first failure, there is no state to keep"


# -- two processes: the agent starved of CPU, the lab not -------------------------------------------


def _scrape(port: int, timeout: float = 20.0) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
            return parse_samples(answer.read().decode())
    except OSError:
        return None  # a starved agent may not answer in time: the next scrape will tell


def _value(samples: dict, name: str, missing: float, **labels: str) -> float:
    """The sample's value, or ``missing`` when there is none (a KPI not evaluated yet, an older agent)."""
    hits = [v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()]
    assert len(hits) <= 1, f"{name}{labels}: {len(hits)} samples"
    return hits[0] if hits else missing


def _covered(samples: dict) -> float:
    """Communes covered; -1 while the KPI has no value (the first round is not complete)."""
    return _value(samples, "egov_kpi_numerator", -1, kpi="wan")


def test_a_starved_agent_reports_its_overload_not_the_province_down(tmp_path: Path) -> None:
    snmp = "{interval: 10s, timeout: 3s, concurrency: 64, jitter: 1.0, settings: {timeout: 1, retries: 1}}"
    source = write_config(tmp_path / "province.yml", province(COMMUNES, snmp))
    agent_config = tmp_path / "lab" / "agent.yml"
    env = {k: v for k, v in os.environ.items() if k != "EGOV_SNMP_COMMUNITY"}
    lab_log, agent_log = tmp_path / "lab.log", tmp_path / "agent.log"
    port = free_port()
    with lab_log.open("wb") as out:
        lab = subprocess.Popen([*AGENT, "lab", "--config", str(source), "--write-config", str(agent_config),
                                "--down-ratio", "0", "--network", LAB_NETWORK],
                               stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    agent = None
    try:
        deadline = time.monotonic() + 60
        while not agent_config.exists():
            assert lab.poll() is None, lab_log.read_text()
            assert time.monotonic() < deadline, "the lab did not start within 60 s"
            time.sleep(0.2)
        with agent_log.open("wb") as out:
            agent = subprocess.Popen([*AGENT, "run", "--config", str(agent_config), "--listen", f"127.0.0.1:{port}",
                                      "--log-rate-limit", "0"], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                     env=env)
        deadline = time.monotonic() + 60
        before = None
        while before is None or _covered(before) != COMMUNES:
            assert agent.poll() is None, agent_log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"not all {COMMUNES} routers up before the starvation"
            time.sleep(1)
            before = _scrape(port)
        failures_before = sum(v for (n, _), v in before.items() if n == "egov_collector_errors_total")

        covered, overloaded, probes_seen = [], [], []
        started = time.monotonic()
        log_from = agent_log.stat().st_size  # downs at the start (first probes of 200 routers) are not the point
        with Starved(agent.pid, STARVE_SHARE, STARVE_SECONDS) as starved:
            while time.monotonic() - started < STARVE_SECONDS:
                time.sleep(5)
                during = _scrape(port)
                if during is not None:
                    covered.append(_covered(during))
                    overloaded.append(_value(during, "egov_agent_overloaded", 0))
                    probes_seen.append(_value(during, "egov_collector_probes_total", 0, collector="snmp"))
        # The agent catches up: wait for a rendering that holds a full round of probes made after the release.
        released = time.monotonic()
        released_at = time.strftime("%H:%M:%S")
        probes_then = None
        while True:
            after = _scrape(port)
            assert time.monotonic() - released < 60, "the agent did not recover within 60 s of the release"
            if after is not None:
                probes = _value(after, "egov_collector_probes_total", 0, collector="snmp")
                probes_then = probes if probes_then is None else probes_then
                if probes >= probes_then + COMMUNES:
                    break
            time.sleep(1)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(20)
        lab.terminate()
        lab.wait(30)

    log = agent_log.read_bytes()[log_from:].decode("utf-8", errors="replace")
    downs = set(re.findall(r"target down: collector=snmp target=(\S+)", log))
    overruns = _value(after, "egov_collector_overrun_total", 0, collector="snmp")
    failures = sum(v for (n, _), v in after.items() if n == "egov_collector_errors_total") - failures_before
    skipped = _value(after, "egov_collector_skipped_probes_total", 0, collector="snmp")
    print(f"starved by {starved.how} for {STARVE_SECONDS:g}s, load {os.getloadavg()}: coverage while starved "
          f"{covered}, overloaded {overloaded}; after: {_covered(after):g}/{COMMUNES}, overruns {overruns:g}, "
          f"failures {failures:g}, skipped {skipped:g}, targets logged down {len(downs)}; released at {released_at}")
    assert not downs, f"{len(downs)} routers reported down while every one was up: {sorted(downs)[:10]}"
    assert len(set(probes_seen)) > 1, f"/metrics froze while the agent was starved: probes {probes_seen}"
    assert all(c == COMMUNES for c in covered), covered
    assert _covered(after) == COMMUNES
    assert overruns > 0, "the starvation did not make any probe overrun: the test starved nothing"
    assert 1.0 in overloaded or _value(after, "egov_agent_overloaded", 0) == 1, "the agent never said it was overloaded"
