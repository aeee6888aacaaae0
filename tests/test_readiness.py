"""/-/ready: the first round has started every target and the live ones have answered; the dead ones'
timeouts are not waited for (they show in egov_agent_first_round_pending_targets until they end).

A real lab (its own process, as the demo runs it) with routers that are down on purpose: ICMP echoes
dropped by nftables, SNMP agents silent. And the agent in-process against a router in a network namespace
and an address nobody holds: a live link's whole first probe is waited for, a dead one's echoes are not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.exposition import parse_samples, sample
from support.icmp_netns import RouterNamespace, router_ns  # noqa: F401 - fixture
from support.net import http_get
from support.paths import REPO
from support.province import Province

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.engine.scheduler import FIRST_ROUND_RATE, FIRST_ROUND_SPREAD, Scheduler, first_round_spread

# The tenth /24 of the engineer's own range (EGOV_LAB_NETWORK), so that two of them can run it side by side.
_RANGE = ipaddress.ip_network(os.environ.get("EGOV_LAB_NETWORK") or "127.93.0.0/16")
NETWORK = str(list(_RANGE.subnets(new_prefix=24))[10] if _RANGE.prefixlen <= 20 else _RANGE)
CONTROL = str(ipaddress.ip_network(NETWORK).broadcast_address - 1)
TIMEOUT = 9.0  # seconds a dead router's first probe waits: /-/ready must come well before
ROUTERS = 6



def province() -> Province:
    """ROUTERS communes, each router probed by ICMP and SNMP, both waiting TIMEOUT on a dead one."""
    p = Province().collector("icmp", interval="30s", timeout=f"{TIMEOUT:g}s")
    p.collector("snmp", interval="30s", timeout=f"{TIMEOUT:g}s", settings={"timeout": 4, "retries": 1})
    for i in range(ROUTERS):
        host = f"10.20.0.{i + 1}"
        p.unit(f"c{i}", f"Xã {i}")
        p.target(f"r{i}-icmp", f"c{i}", "icmp", tags=["wan_link"], params={"host": host})
        p.target(f"r{i}-snmp", f"c{i}", "snmp", tags=["wan_link"], params={
            "host": host, "community": "env:EGOV_SNMP_COMMUNITY", "interface": {"name": "GigabitEthernet0/0/0"}})
    return p


@pytest.fixture
def lab(tmp_path: Path):
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("dead routers in the lab need root and nft (nftables drops their echoes)")
    province_ = province().write(tmp_path / "province.yml")
    agent_config = tmp_path / "agent.yml"
    proc = subprocess.Popen([sys.executable, "-m", "agent.app.cli", "lab", "--config", str(province_), "--write-config",
                             str(agent_config), "--network", NETWORK, "--down-ratio", "0.34",
                             "--control", f"{CONTROL}:0"], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not agent_config.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the lab did not start"
            time.sleep(0.1)
        yield agent_config
    finally:
        proc.terminate()
        proc.wait(20)


def test_ready_once_live_routers_answered_not_after_dead_ones_timeouts(lab: Path, start_agent) -> None:
    started = time.monotonic()
    agent = start_agent(lab, ready=False)
    while True:
        assert agent.proc.poll() is None, agent.log.read_text()
        try:
            if http_get(agent.base + "/-/ready", timeout=1)[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() - started < TIMEOUT, "not ready before the dead routers' timeout"
        time.sleep(0.05)
    ready_after = time.monotonic() - started
    at_ready = parse_samples(agent.metrics())
    waiting = sample(at_ready, "egov_agent_first_round_pending_targets")
    up = {dict(labels)["target"] for (name, labels), value in at_ready.items()
          if name == "egov_target_up" and value == 1.0}
    assert ready_after < TIMEOUT - 2, ready_after
    # Two of six routers are dead (ICMP and SNMP each): still in their first probe at ready; the others answered.
    assert waiting == 4, waiting
    assert len(up) == 2 * ROUTERS - 4, up
    # Their timeouts end the first round: every target is then judged, the dead ones down.
    deadline = time.monotonic() + TIMEOUT + 5
    while sample(parse_samples(agent.metrics()), "egov_agent_first_round_pending_targets") != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert agent.stop() == 0


def test_a_live_links_whole_first_probe_is_waited_for_a_dead_links_echoes_are_not(
        tmp_path: Path, router_ns: RouterNamespace, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Five echoes each. The router and loopback answer the first at once, so readiness waits for their last
    (their results are in the store at ready); the absent address answers none, so it is not waited for past a
    second (ANSWER_TIME), not the (5 - 1) × 3 s + 1 s its echoes would take (13 s): only its timeout is left."""
    monkeypatch.setenv("EGOV_AGENT_PROBE_ALLOW", f"127.0.0.0/8,::1/128,{router_ns.subnet}")
    p = Province().unit("c1", "Xã Một").collector("icmp", interval="60s", timeout="15s")
    for target_id, host, spacing in (("r1", router_ns.router, 0.3), ("lo", "127.0.0.1", 0.3),
                                     ("gone", router_ns.absent, 3.0)):
        p.target(target_id, "c1", "icmp", params={"host": host, "count": 5, "interval": spacing})
    agent = Agent(load_config(p.write(tmp_path / "icmp.yml")))
    scheduler = Scheduler(agent.loaded, agent.store, agent.collectors, agent.targets)

    async def until_ready() -> tuple[float, dict[str, int], int]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        running = asyncio.create_task(scheduler.run_forever())
        try:
            await asyncio.wait_for(scheduler.ready.wait(), 9.0)  # well before the 13 s the old rule waited
            states = agent.states()
            return (loop.time() - started, {t: states[t].probes_total for t in ("r1", "lo", "gone") if t in states},
                    agent.store.first_round_pending)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await agent.close()

    waited, probed, pending = asyncio.run(until_ready())
    assert probed.get("r1") == 1 and probed.get("lo") == 1, probed  # their whole first probe, 5 echoes, is in
    assert probed.get("gone", 0) == 0 and pending == 1, (probed, pending)  # still sending echoes to nobody
    assert waited >= 4 * 0.3, waited  # the live links' last echoes were waited for


def test_the_first_round_spread_follows_what_can_run_at_once(tmp_path: Path) -> None:
    """Each collector's targets count up to its concurrency (the rest wait for a slot anyway); a pool's worker
    counts its share of the concurrency."""
    assert first_round_spread(0) == 0
    assert first_round_spread(854) == pytest.approx(854 / FIRST_ROUND_RATE)
    assert first_round_spread(10**6) == FIRST_ROUND_SPREAD
    p = Province().unit("c1", "Xã Một")
    p.collector("tcp", interval="30s", timeout="5s", concurrency=10)
    p.collector("icmp", interval="30s", timeout="5s", concurrency=512)
    for i in range(30):
        p.target(f"t{i}", "c1", "tcp", params={"host": "127.0.0.1", "port": 1})
        p.target(f"i{i}", "c1", "icmp", params={"host": "127.0.0.1"})
    loaded = load_config(p.write(tmp_path / "p.yml"))
    agent = Agent(loaded)
    alone = Scheduler(loaded, agent.store, agent.collectors, agent.targets)
    assert alone.spread == pytest.approx((10 + 30) / FIRST_ROUND_RATE)
    worker = Scheduler(loaded, agent.store, agent.collectors, agent.targets, share_of=4)
    assert worker.spread == pytest.approx((3 + 30) / FIRST_ROUND_RATE)
