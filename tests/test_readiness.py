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
from support.province import write_config

NETWORK = "127.93.10.0/24"
TIMEOUT = 9.0  # seconds a dead router's first probe waits: /-/ready must come well before
ROUTERS = 6

PROVINCE = """\
province: {code: test, name_vi: Tỉnh Thử, name_en: Test Province}
levels: [province, commune]
units:
  - id: p
    name_vi: Tỉnh Thử
    level: province
    children:
""" + "".join(f"      - {{id: c{i}, name_vi: Xã {i}, level: commune}}\n" for i in range(ROUTERS)) + f"""\
collectors:
  icmp: {{interval: 30s, timeout: {TIMEOUT:g}s}}
  snmp: {{interval: 30s, timeout: {TIMEOUT:g}s, settings: {{timeout: 4, retries: 1}}}}
targets:
""" + "".join(f"""\
  - {{id: r{i}-icmp, unit: c{i}, collector: icmp, tags: [wan_link], params: {{host: 10.20.0.{i + 1}}}}}
  - {{id: r{i}-snmp, unit: c{i}, collector: snmp, tags: [wan_link],
     params: {{host: 10.20.0.{i + 1}, community: "env:EGOV_SNMP_COMMUNITY",
              interface: {{name: GigabitEthernet0/0/0}}}}}}
""" for i in range(ROUTERS))


@pytest.fixture
def lab(tmp_path: Path):
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("dead routers in the lab need root and nft (nftables drops their echoes)")
    province = write_config(tmp_path / "province.yml", PROVINCE)
    agent_config = tmp_path / "agent.yml"
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "lab", "--config", str(province), "--write-config",
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
