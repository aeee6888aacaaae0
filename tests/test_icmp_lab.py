"""The lab's simulated routers: they answer on loopback, and break on demand as the agent sees it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.exposition import parse_samples, sample
from support.paths import REPO
from support.province import commune_routers

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.engine.scheduler import Scheduler
from agent.lab import Lab
from agent.lab import write_config as write_lab_config


def nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def nft_root():
    if os.geteuid() != 0:
        pytest.skip("ICMP faults in the lab need root (nftables rules on loopback)")
    if shutil.which("nft") is None:
        pytest.skip("ICMP faults in the lab need nft (Debian package nftables)")


class LabAndAgent:
    """The lab and the real agent on one event loop, as ``egov-agent demo`` runs them (there, in two processes)."""

    def __init__(self, tmp_path: Path) -> None:
        self.runner = asyncio.Runner()
        province = commune_routers("10.20.0", 4, count=40, interval=0.005).write(tmp_path / "province.yml")
        self.lab = Lab(province, down_ratio=0.25)
        data = self.runner.run(self.lab.start())
        write_lab_config(data, tmp_path / "agent.yml")
        loaded = load_config(tmp_path / "agent.yml")
        self.agent = Agent(loaded)
        self.scheduler = Scheduler(loaded, self.agent.store, self.agent.collectors, self.agent.targets)
        self.hosts = {t["id"]: t["params"]["host"] for t in data["targets"]}

    def probe(self) -> dict:
        self.runner.run(self.scheduler.run_once())
        return parse_samples(self.agent.exposition.render(None)[0].decode())

    def set_state(self, target_id: str, state: str) -> None:
        self.runner.run(self.lab.set_state(target_id, state))

    def close(self) -> None:
        try:
            self.runner.run(self.agent.close())
            self.runner.run(self.lab.close())
        finally:
            self.runner.close()


def test_lab_routers_break_as_the_agent_sees_it(tmp_path, nft_root):
    env = LabAndAgent(tmp_path)
    try:
        assert all(h.startswith("127.77.") for h in env.hosts.values())
        states = env.lab.states()
        dead = [t for t, s in states.items() if s == "down"]
        assert len(dead) == 1  # round(0.25 × 4)
        s = env.probe()
        for tid, state in states.items():
            assert sample(s, "egov_target_up", target=tid) == (0 if state == "down" else 1)
        assert sample(s, "egov_kpi_numerator", kpi="wan_commune_coverage") == 3
        alive = [t for t in states if t not in dead]

        env.set_state(alive[0], "lossy")
        env.set_state(alive[1], "slow")
        env.set_state(dead[0], "up")
        s = env.probe()
        # 40 echoes at 30 % loss: P(none lost) = 0.7^40 ~ 6e-7.
        assert 0 < sample(s, "egov_icmp_loss_ratio", target=alive[0]) < 1
        assert sample(s, "egov_icmp_rtt_seconds", target=alive[1], stat="min") >= 0.3
        assert sample(s, "egov_icmp_loss_ratio", target=alive[1]) == 0
        assert sample(s, "egov_target_up", target=dead[0]) == 1
        assert sample(s, "egov_icmp_rtt_seconds", target=alive[2], stat="max") < 0.3

        env.lab.simulators["icmp"].faults.flap_seconds = 0.5
        env.set_state(alive[2], "flapping")
        seen: set[float] = set()
        deadline = time.monotonic() + 10
        while not {0.0, 1.0} <= seen and time.monotonic() < deadline:
            seen.add(sample(env.probe(), "egov_icmp_loss_ratio", target=alive[2]))
        assert {0.0, 1.0} <= seen, f"flapping router's loss ratios seen: {sorted(seen)}"

        for tid in states:
            env.set_state(tid, "up")
        s = env.probe()
        assert all(sample(s, "egov_icmp_loss_ratio", target=t) == 0 for t in states)
        with pytest.raises(ValueError, match="not 'sideways'"):
            env.set_state(alive[0], "sideways")
        table = env.lab.simulators["icmp"].faults.table
        assert table in nft_tables()
    finally:
        env.close()
    assert table not in nft_tables()


def test_a_dead_lab_table_is_removed_by_the_next_lab(nft_root):
    script = ("import asyncio, ipaddress, time\n"
              "from collectors.lab_addresses import AddressPool\n"
              "from collectors.icmp.lab import IcmpSimulator\n"
              "async def main():\n"
              "    sim = IcmpSimulator(AddressPool(ipaddress.ip_network('127.77.252.0/24')))\n"
              "    await sim.add('r', {'host': '10.9.9.9'}, up=False)\n"
              "    print(sim.faults.table, flush=True)\n"
              "    time.sleep(60)\n"
              "asyncio.run(main())\n")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        table = child.stdout.readline().strip()
        assert table and table in nft_tables()
    finally:
        child.send_signal(signal.SIGKILL)  # no close(), no atexit: the table stays behind
        child.wait(10)
    assert table in nft_tables()

    from collectors.icmp.lab import IcmpSimulator
    from collectors.lab_addresses import AddressPool

    async def next_lab() -> str:
        import ipaddress
        sim = IcmpSimulator(AddressPool(ipaddress.ip_network("127.77.251.0/24")))
        await sim.add("r", {"host": "10.9.9.9"}, up=False)
        mine = sim.faults.table
        await sim.close()
        return mine

    mine = asyncio.run(next_lab())
    tables = nft_tables()
    assert table not in tables and mine not in tables


def test_without_nft_routers_answer_and_faults_are_refused(tmp_path):
    script = ("import asyncio, ipaddress\n"
              "from collectors.lab_addresses import AddressPool\n"
              "from collectors.icmp.lab import IcmpSimulator\n"
              "async def main():\n"
              "    sim = IcmpSimulator(AddressPool(ipaddress.ip_network('127.77.250.0/24')))\n"
              "    params = await sim.add('r', {'host': '10.9.9.9', 'count': 3}, up=False)\n"
              "    print(params, sim.states())\n"
              "    try:\n"
              "        await sim.set_state('r', 'down')\n"
              "    except ValueError as exc:\n"
              "        print('refused:', exc)\n"
              "asyncio.run(main())\n")
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PATH": str(empty)})
    assert result.returncode == 0, result.stderr
    assert "{'host': '127.77.250.1', 'count': 3} {'r': 'up'}" in result.stdout
    assert "refused:" in result.stdout and "SNMP target down instead" in result.stdout
