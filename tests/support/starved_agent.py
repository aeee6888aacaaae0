"""A starved agent beside a lab that is not: the scenario of tests/test_overload.py and bench/overload.py.

``egov-agent lab`` simulates a province of routers, all up, in a process of its own; ``egov-agent run``
monitors it in another. Once every router is seen up, the agent alone is starved of CPU for a bounded
time (tests/support/cpu_starve.py), scraped meanwhile, then given its CPU back and scraped once a full round of
probes has followed. ``repo`` picks the checkout whose agent runs, so the same scenario measures
another version of the code.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from support.cpu_starve import Starved
from support.exposition import parse_samples
from support.net import free_port
from support.paths import AGENT, REPO
from support.province import Province, coverage, ops_target

LAB_NETWORK = "127.44.0.0/16"


def province(communes: int, snmp: str) -> Province:
    """Districts of 20 communes, one router each, and the WAN coverage KPI over the communes; ``snmp`` is the
    snmp collector's section as YAML text (bench/overload.py takes it from its command line)."""
    p = Province(code="starve", levels=["province", "district", "commune"])
    for d in range(communes // 20):
        p.unit(f"d{d}", f"Huyện {d}", level="district")
        for c in range(20):
            p.unit(f"c{d}-{c}", f"Xã {d}-{c}", parent=f"d{d}")
            p.target(f"c{d}-{c}-snmp", f"c{d}-{c}", "snmp", tags=["wan_link"], params={
                "host": f"10.9.{d}.{c + 1}", "community": "env:EGOV_SNMP_COMMUNITY", "interface": {"index": 1}})
    p.collector("snmp", **yaml.safe_load(snmp))
    return p.kpi("wan", coverage(tags=["wan_link"], level="commune", unit_up="all", group_by="district"),
                 title_vi="Xã có đường truyền WAN", title_en="Communes with a WAN link up",
                 targets=[ops_target("100%", "=", phase="test")])


def scrape(port: int, timeout: float = 20.0) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
            return parse_samples(answer.read().decode())
    except OSError:
        return None  # a starved agent may not answer in time: the next scrape will tell


def value(samples: dict, name: str, missing: float, **labels: str) -> float:
    """The sample's value, or ``missing`` when there is none (a KPI not evaluated yet, an older agent)."""
    hits = [v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()]
    assert len(hits) <= 1, f"{name}{labels}: {len(hits)} samples"
    return hits[0] if hits else missing


def covered(samples: dict) -> float:
    """Communes covered; -1 while the KPI has no value (the first round is not complete)."""
    return value(samples, "egov_kpi_numerator", -1, kpi="wan")


@dataclass
class Outcome:
    communes: int
    how: str = ""
    covered_during: list[float] = field(default_factory=list)
    overloaded_during: list[float] = field(default_factory=list)
    probes_during: list[float] = field(default_factory=list)
    covered_after: float = -1
    overloaded_after: float = 0
    overruns: float = 0
    failures: float = 0
    skipped: float = 0
    downs: set[str] = field(default_factory=set)  # routers the agent logged down from the starvation on
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def summary(self, seconds: float) -> str:
        return (f"starved by {self.how} for {seconds:g}s, load {self.load[0]:.2f} {self.load[1]:.2f} "
                f"{self.load[2]:.2f}: coverage while starved {[int(c) for c in self.covered_during]}, overloaded "
                f"{[int(o) for o in self.overloaded_during]}; after: {self.covered_after:g}/{self.communes}, "
                f"overruns {self.overruns:g}, failures {self.failures:g}, skipped {self.skipped:g}, "
                f"routers logged down {len(self.downs)}")


def starve(tmp: Path, communes: int, snmp: str, share: float, seconds: float, repo: Path = REPO) -> Outcome:
    source = province(communes, snmp).write(tmp / "province.yml")
    agent_config = tmp / "lab" / "agent.yml"
    env = {k: v for k, v in os.environ.items() if k != "EGOV_SNMP_COMMUNITY"}
    lab_log, agent_log = tmp / "lab.log", tmp / "agent.log"
    port = free_port()
    outcome = Outcome(communes)
    with lab_log.open("wb") as out:
        lab = subprocess.Popen([*AGENT, "lab", "--config", str(source), "--write-config", str(agent_config),
                                "--down-ratio", "0", "--network", LAB_NETWORK],
                               stdout=out, stderr=subprocess.STDOUT, cwd=repo, env=env)
    agent = None
    try:
        deadline = time.monotonic() + 60
        while not agent_config.exists():
            assert lab.poll() is None, lab_log.read_text()
            assert time.monotonic() < deadline, "the lab did not start within 60 s"
            time.sleep(0.2)
        with agent_log.open("wb") as out:
            agent = subprocess.Popen([*AGENT, "run", "--config", str(agent_config), "--listen", f"127.0.0.1:{port}",
                                      "--log-rate-limit", "0"], stdout=out, stderr=subprocess.STDOUT, cwd=repo,
                                     env=env)
        deadline = time.monotonic() + 60
        before = None
        while before is None or covered(before) != communes:
            assert agent.poll() is None, agent_log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"not all {communes} routers up before the starvation"
            time.sleep(1)
            before = scrape(port)
        failures_before = sum(v for (n, _), v in before.items() if n == "egov_collector_errors_total")

        started = time.monotonic()
        log_from = agent_log.stat().st_size  # downs in the first probes' burst are not the starvation's
        with Starved(agent.pid, share, seconds) as starved:
            outcome.how = starved.how
            while time.monotonic() - started < seconds:
                time.sleep(5)
                during = scrape(port)
                if during is not None:
                    outcome.covered_during.append(covered(during))
                    outcome.overloaded_during.append(value(during, "egov_agent_overloaded", 0))
                    outcome.probes_during.append(value(during, "egov_collector_probes_total", 0, collector="snmp"))
        # The agent catches up: wait for a rendering that holds a full round of probes made after the release.
        released = time.monotonic()
        probes_then = None
        while True:
            after = scrape(port)
            assert time.monotonic() - released < 60, "the agent did not recover within 60 s of the release"
            if after is not None:
                probes = value(after, "egov_collector_probes_total", 0, collector="snmp")
                probes_then = probes if probes_then is None else probes_then
                if probes >= probes_then + communes:
                    break
            time.sleep(1)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(20)
        lab.terminate()
        lab.wait(30)
    log = agent_log.read_bytes()[log_from:].decode("utf-8", errors="replace")
    outcome.downs = set(re.findall(r"target down: collector=snmp target=(\S+)", log))
    outcome.covered_after = covered(after)
    outcome.overloaded_after = value(after, "egov_agent_overloaded", 0)
    outcome.overruns = value(after, "egov_collector_overrun_total", 0, collector="snmp")
    outcome.failures = sum(v for (n, _), v in after.items() if n == "egov_collector_errors_total") - failures_before
    outcome.skipped = value(after, "egov_collector_skipped_probes_total", 0, collector="snmp")
    outcome.load = os.getloadavg()
    return outcome
