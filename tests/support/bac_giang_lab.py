"""``egov-agent lab`` on the shipped Bắc Giang as a child process, for the end-to-end tests
(test_e2e_prometheus, test_alert_count): its agent configuration, its control API, and probes sped up."""

from __future__ import annotations

import os
import random
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from support.paths import AGENT, REPO
from support.processes import stop_process

PROVINCE = REPO / "config" / "provinces" / "bac-giang.yml"
# A loopback range of its own: engineers sharing a machine give each lab theirs (EGOV_LAB_NETWORK).
NETWORK = os.environ.get("EGOV_LAB_NETWORK") or f"127.{random.randint(100, 199)}.0.0/16"
FAST = {"interval": "15s", "timeout": "12s"}  # the tests cannot wait 30 s per probe round


class Lab:
    def __init__(self, tmp: Path, network: str | None = None) -> None:
        self.config = tmp / "agent.yml"
        self.log = (tmp / "lab.log").open("wb")
        self.proc = subprocess.Popen([*AGENT, "lab", "--config", str(PROVINCE), "--write-config", str(self.config),
                                      "--down-ratio", "0", "--network", network or NETWORK],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 120
        while not self.config.exists():
            assert self.proc.poll() is None, (tmp / "lab.log").read_text()
            assert time.monotonic() < deadline, "the lab did not start in 120 s"
            time.sleep(0.2)
        self.control = (tmp / "agent.yml.control").read_text().strip()

    def set(self, target: str, state: str) -> None:
        request = urllib.request.Request(f"{self.control}/targets/{target}/{state}", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=45) as response:
            assert response.status == 200

    def stop(self) -> None:
        stop_process(self.proc, grace=20)
        self.log.close()


def speed_up(config: Path) -> None:
    """Probe every 15 s with timeouts that fit: three agents share two cores with the lab and two
    Prometheus servers, and a slower CI machine must not time the lab's routers out (that failed at
    10 s with 3 s SNMP timeouts); the lab's generated configuration is the test's to change."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for name, spec in data["collectors"].items():
        spec.update(FAST)
        if name == "snmp":
            spec.setdefault("settings", {}).update({"timeout": 5, "retries": 1})
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
