"""/-/ready: the first round has started every target and the live ones have answered; the dead ones'
timeouts are not waited for (they show in egov_agent_first_round_pending_targets until they end).

A real lab (its own process, as the demo runs it) with routers that are down on purpose: ICMP echoes
dropped by nftables, SNMP agents silent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.exposition import parse_samples, sample
from support.net import http_get
from support.paths import REPO
from support.province import Province

NETWORK = "127.93.10.0/24"
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
                             "--control", "127.93.10.254:0"], cwd=REPO)
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
