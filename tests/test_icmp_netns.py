"""ICMP against a router in a network namespace: real echoes over a veth link, real faults on it.

The agent runs for real: in-process (its Agent, Scheduler and exposition, so several probes share
the collector's per-target history the up rule reads) or as ``egov-agent once``. Results are read
from the Prometheus exposition with prometheus_client's parser.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.exposition import parse_samples, sample
from support.icmp_netns import RouterNamespace, router_ns  # noqa: F401 - fixture
from support.paths import AGENT, REPO
from support.province import Province, coverage, ops_target

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.engine.scheduler import Scheduler


def target(target_id: str, unit: str, host: str, count: int = 5, interval: float = 0.02) -> dict[str, Any]:
    return {"target_id": target_id, "unit": unit, "params": {"host": host, "count": count, "interval": interval}}


def config(tmp_path: Path, targets: list[dict[str, Any]], timeout: str = "2s", over: int = 3) -> Path:
    """Communes c1..c3 pinged by ``targets``, judged probe by probe, and their WAN coverage."""
    p = Province().unit("c1", "Xã Một").unit("c2", "Xã Hai").unit("c3", "Xã Ba")
    p.collector("icmp", interval="30s", timeout=timeout,
                down_after=1,  # the up rule's own verdict, probe by probe (it is the ICMP debounce)
                settings={"up_rule": {"max_loss": 0.5, "over_probes": over}})
    for one in targets:
        p.target(collector="icmp", **one)
    p.kpi("wan_commune_coverage", coverage(collector="icmp", level="commune"), title_vi="Tỷ lệ xã kết nối mạng WAN",
          title_en="Communes connected to the WAN", targets=[ops_target("100%")])
    return p.write(tmp_path / "icmp.yml")


@pytest.fixture
def allow(monkeypatch: pytest.MonkeyPatch, router_ns: RouterNamespace):  # noqa: F811
    """Let the agent probe the test's own /29 as well as loopback."""
    monkeypatch.setenv("EGOV_AGENT_PROBE_ALLOW", f"127.0.0.0/8,::1/128,{router_ns.subnet}")
    return router_ns


class InProcessAgent:
    """The real agent on one event loop, probed round by round between fault injections."""

    def __init__(self, path: Path) -> None:
        self.runner = asyncio.Runner()
        loaded = load_config(path)
        self.agent = Agent(loaded)
        self.scheduler = Scheduler(loaded, self.agent.store, self.agent.collectors, self.agent.targets)

    def probe(self) -> dict:
        self.runner.run(self.scheduler.run_once())
        body, _ = self.agent.exposition.render(None)
        return parse_samples(body.decode())

    def close(self) -> None:
        self.runner.run(self.agent.close())
        self.runner.close()


@pytest.fixture
def in_process():
    agents: list[InProcessAgent] = []

    def start(path: Path) -> InProcessAgent:
        agents.append(InProcessAgent(path))
        return agents[-1]

    yield start
    for agent in agents:
        agent.close()


def icmp(samples: dict, name: str, **labels: str) -> float:
    return sample(samples, "egov_" + name, target="r1", **labels)


def test_full_loss_is_down_under_the_rule_and_restored_is_up(tmp_path, allow, in_process):
    router = allow
    agent = in_process(config(tmp_path, [target("r1", "c1", router.router)], over=3))

    s = agent.probe()
    assert icmp(s, "target_up") == 1
    assert icmp(s, "icmp_loss_ratio") == 0
    assert icmp(s, "icmp_rtt_seconds", stat="min") > 0

    router.lose(100)
    s = agent.probe()  # window: 0/5 lost, 5/5 lost -> 50 %, not below max_loss 0.5
    assert icmp(s, "target_up") == 0
    assert icmp(s, "icmp_loss_ratio") == 1
    assert icmp(s, "icmp_rule_loss_ratio") == pytest.approx(0.5)
    assert icmp(s, "target_probe_failures_total", reason="timeout") == 1
    assert not any(n == "egov_icmp_rtt_seconds" for n, _ in s)  # no reply, no RTT
    s = agent.probe()
    assert icmp(s, "target_up") == 0

    router.heal()
    s = agent.probe()  # the rule still remembers two dead probes: 10/15 lost
    assert icmp(s, "icmp_loss_ratio") == 0
    assert icmp(s, "icmp_rule_loss_ratio") == pytest.approx(10 / 15)
    assert icmp(s, "target_up") == 0
    assert icmp(s, "target_probe_failures_total", reason="loss") == 1
    s = agent.probe()  # 5/15 lost: below 50 %, up again
    assert icmp(s, "target_up") == 1
    assert icmp(s, "icmp_echo_requests_total") == 25
    assert icmp(s, "icmp_echo_replies_total") == 15
    assert sample(s, "egov_kpi_numerator", kpi="wan_commune_coverage") == 1


def test_thirty_percent_loss_is_up_but_lossy(tmp_path, allow, in_process):
    router = allow
    # 100 echoes: P(no loss at all) = 0.7^100 ~ 3e-16, P(50 or more lost) ~ 2e-5, so the bounds cannot flake.
    agent = in_process(config(tmp_path, [target("r1", "c1", router.router, count=100, interval=0.005)],
                              timeout="1s", over=1))
    router.lose(30)
    s = agent.probe()
    loss = icmp(s, "icmp_loss_ratio")
    assert 0 < loss < 0.5, f"loss {loss} with {router.loss_backend}"
    assert icmp(s, "target_up") == 1
    assert icmp(s, "icmp_echo_requests_total") == 100
    assert icmp(s, "icmp_echo_replies_total") == round(100 * (1 - loss))
    assert 0 < icmp(s, "icmp_rtt_seconds", stat="min") <= icmp(s, "icmp_rtt_seconds", stat="max")


def test_link_down_is_down_and_back_up(tmp_path, allow, in_process):
    router = allow
    agent = in_process(config(tmp_path, [target("r1", "c1", router.router)], over=1))
    assert icmp(agent.probe(), "target_up") == 1

    router.set_link(False)
    s = agent.probe()
    assert icmp(s, "target_up") == 0
    assert icmp(s, "icmp_loss_ratio") == 1
    failures = {dict(labels)["reason"] for name, labels in s if name == "egov_target_probe_failures_total"}
    assert failures <= {"timeout", "unreachable"} and failures

    router.set_link(True)
    deadline = time.monotonic() + 10
    while "NO-CARRIER" in subprocess.run(["ip", "link", "show", router.host_if], capture_output=True,
                                         text=True).stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    s = agent.probe()
    assert icmp(s, "target_up") == 1
    assert icmp(s, "icmp_loss_ratio") < 0.5


def test_once_reports_live_absent_and_loopback_routers(tmp_path, allow):
    router = allow
    path = config(tmp_path, [target("r1", "c1", router.router), target("gone", "c2", router.absent),
                             target("lo", "c3", "127.0.0.1")], over=3)
    env = {**os.environ, "EGOV_AGENT_PROBE_ALLOW": f"127.0.0.0/8,::1/128,{router.subnet}"}
    result = subprocess.run([*AGENT, "once", "--config", str(path), "--format", "prometheus"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    s = parse_samples(result.stdout)
    assert sample(s, "egov_target_up", target="r1", commune="c1") == 1
    assert sample(s, "egov_target_up", target="lo") == 1
    assert sample(s, "egov_target_up", target="gone") == 0
    assert sample(s, "egov_icmp_loss_ratio", target="gone") == 1  # the probe ended itself within its timeout
    assert sample(s, "egov_icmp_echo_requests_total", target="gone") == 5
    assert sample(s, "egov_target_probe_failures_total", target="gone", reason="timeout") == 1
    assert sample(s, "egov_kpi_numerator", kpi="wan_commune_coverage") == 2
    assert sample(s, "egov_kpi_denominator", kpi="wan_commune_coverage") == 3
    assert "target down: collector=icmp target=gone" in result.stderr
