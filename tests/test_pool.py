"""``egov-agent run --workers 2`` against the lab's routers (agent/lab simulators in a process of their own).

Judged right, a worker killed with SIGKILL restarted with nothing counted twice or left unprobed, a
SIGHUP reload reaching the workers, and no worker outliving a main process killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from support.exposition import parse_samples
from support.paths import REPO
from support.service import Agent, wait_until

from agent.engine.pool import worker_of
from agent.engine.sharding import Shard

sys.path.insert(0, str(REPO / "bench"))
import wan_lab as lab

NETWORK = "127.92.1.0/24"  # this test's own loopback range
ROUTERS, CONFIGURED, DEAD = 40, 36, 8  # the last 4 routers are added by the reload
INTERVAL = 3.0
COLLECTORS = {
    "icmp": {"interval": f"{INTERVAL:g}s", "timeout": "1s", "concurrency": 64},
    "snmp": {"interval": f"{INTERVAL:g}s", "timeout": "2s", "concurrency": 32,
             "settings": {"timeout": 0.5, "retries": 1}},
}


@pytest.fixture(scope="module")
def province():
    if os.geteuid() != 0:
        pytest.skip("the lab's dead routers are nftables rules: root only")
    os.environ.setdefault("EGOV_SNMP_COMMUNITY", "pool-test-community")
    whole = lab.generated(1, COLLECTORS)
    whole.routers = whole.routers[:ROUTERS]
    for i, router in enumerate(whole.routers):
        router.up = i % (ROUTERS // DEAD) != 1
    proc, ready = lab.start_lab(whole.routers, network=NETWORK)
    try:
        assert ready["icmp_faults"], "the lab could not make ICMP routers dead"
        yield whole
    finally:
        lab.stop_lab(proc)


def write(province, path: Path, routers, icmp_hosts: dict[str, str] | None = None) -> None:
    document = lab.agent_config(lab.Province(province.label, province.document, routers), False, 1)
    document["targets"] = [t for t in document["targets"] if "wan_link" in t["tags"]]
    for target in document["targets"]:
        if icmp_hosts and target["id"] in icmp_hosts:
            target["params"]["host"] = icmp_hosts[target["id"]]
    lab.write_yaml(document, path)


def scrape(agent: Agent) -> dict:
    return parse_samples(agent.get("/metrics").text)


def per_target(samples: dict, name: str) -> dict[str, float]:
    return {dict(labels)["target"]: v for (n, labels), v in samples.items() if n == name}


def workers_of(agent: Agent) -> list[psutil.Process]:
    return [p for p in psutil.Process(agent.proc.pid).children() if "agent.engine.worker" in " ".join(p.cmdline())]


def test_units_split_evenly_inside_a_shard() -> None:
    """Under --shard 1/2 every unit has the same CRC parity: the pool's own hash must still split them."""
    units = [f"u{i}" for i in range(400) if Shard(1, 2).owns_unit(f"u{i}")]
    shares = [sum(1 for u in units if worker_of(u, 2) == w) for w in (0, 1)]
    assert min(shares) > 0.35 * len(units), shares


def test_two_workers(province, tmp_path: Path) -> None:
    routers = province.routers[:CONFIGURED]
    truth = {t: r.up for r in province.routers for t in (r.icmp_id, r.snmp_id)}
    config = tmp_path / "pool.yml"
    write(province, config, routers)
    agent = Agent(tmp_path, config, ["--workers", "2", "--storage.state-file", str(tmp_path / "state.db")])
    started = time.monotonic()
    try:
        agent.wait_ready(60)
        workers = workers_of(agent)
        assert len(workers) == 2, agent.text()

        # Judged right: every target's state is the lab's truth, and both workers probe.
        def judged() -> dict | None:
            samples = scrape(agent)
            up = per_target(samples, "egov_target_up")
            return samples if len(up) == 2 * CONFIGURED and all(up[t] == truth[t] for t in up) else None

        samples = wait_until(judged, 20, lambda: f"wrong: {per_target(scrape(agent), 'egov_target_up')}")
        assert samples[("egov_agent_workers", (("state", "running"),))] == 2
        assert {worker_of(r.unit, 2) for r in routers} == {0, 1}
        assert all(w.cpu_times().user > 0 for w in workers)

        # SIGKILL a worker: it is restarted, counted, and every target goes on being probed.
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        before = per_target(scrape(agent), "egov_target_probes_total")
        killed = time.monotonic()

        def restarted() -> bool:
            s = scrape(agent)
            return (s.get(("egov_agent_worker_restarts_total", ()), 0) == 1
                    and s[("egov_agent_workers", (("state", "running"),))] == 2)

        wait_until(restarted, 15, lambda: f"not restarted:\n{agent.text()}")
        assert victim.pid not in {w.pid for w in workers_of(agent)}
        assert "collector worker 1" in agent.text() and "signal SIGKILL" in agent.text()

        def all_probed_again() -> bool:
            now = per_target(scrape(agent), "egov_target_probes_total")
            return all(now[t] >= before[t] + 2 for t in before)

        wait_until(all_probed_again, 4 * INTERVAL + 10, "some targets were not probed after the restart")
        samples = scrape(agent)
        counts = per_target(samples, "egov_target_probes_total")
        elapsed = time.monotonic() - started
        # Never counted twice: no target has more probes than its schedule allows ...
        assert max(counts.values()) <= elapsed / INTERVAL + 2, (max(counts.values()), elapsed)
        # ... and the collectors' totals are the targets' totals: each result applied once.
        by_collector = sum(v for (n, _), v in samples.items() if n == "egov_collector_probes_total")
        assert by_collector == sum(counts.values())
        assert time.monotonic() - killed < 4 * INTERVAL + 25

        # SIGHUP: the workers get the new configuration (4 routers added, one ICMP target moved to a dead address).
        dead = next(r for r in routers if not r.up)
        moved = next(r for r in routers if r.up)
        write(province, config, province.routers, {moved.icmp_id: dead.host})
        agent.proc.send_signal(signal.SIGHUP)
        truth[moved.icmp_id] = False

        def reloaded() -> bool:
            up = per_target(scrape(agent), "egov_target_up")
            return len(up) == 2 * ROUTERS and all(up[t] == truth[t] for t in up)

        wait_until(reloaded, 6 * INTERVAL + 10,
                   lambda: f"reload not applied: {per_target(scrape(agent), 'egov_target_up')}\n{agent.text()}")
        assert len(workers_of(agent)) == 2

        # SIGKILL the main process: its workers follow it.
        pids = [w.pid for w in workers_of(agent)]
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(5)

        def gone() -> bool:
            return not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)

        wait_until(gone, 5, f"workers {pids} outlived the main process")
    finally:
        for worker in workers_of(agent) if agent.proc.poll() is None else []:
            worker.kill()
        agent.stop()


def test_sigterm_stops_the_workers(province, tmp_path: Path) -> None:
    """SIGTERM stops the main process cleanly, and its workers with it."""
    config = tmp_path / "pool.yml"
    write(province, config, province.routers[:CONFIGURED])
    agent = Agent(tmp_path, config, ["--workers", "2"])
    try:
        agent.wait_ready(60)
        pids = [w.pid for w in workers_of(agent)]
        assert len(pids) == 2
    finally:
        assert agent.stop() == 0, agent.text()
    assert not any(psutil.pid_exists(p) for p in pids)
