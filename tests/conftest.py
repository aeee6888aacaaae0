"""Shared fixtures: real agent processes, real TCP peers, exposition parsing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
# Tests only ever probe loopback: a configuration naming any other address is refused by the agent.
os.environ["EGOV_AGENT_PROBE_ALLOW"] = "127.0.0.0/8,::1/128"
# ... and the credentials of its application sources (config/provinces/bac-giang/apps.yml).
for _name in ("EGOV_BG_QLVB_TOKEN", "EGOV_BG_MOTCUA_PASSWORD", "EGOV_BG_DVC_DB_PASSWORD", "EGOV_BG_MAIL_TOKEN",
              "EGOV_BG_HOP_TOKEN", "EGOV_BG_TINH_UY_TOKEN", "EGOV_BG_SSO_TOKEN", "EGOV_BG_LGSP_TOKEN",
              "EGOV_BG_BAO_CAO_TOKEN"):
    os.environ.setdefault(_name, "test-" + _name.lower())
AGENT = [sys.executable, "-m", "agent.app.cli"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def parse_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def sample(samples: dict, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    hits = [v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()]
    assert len(hits) == 1, f"{name}{labels}: {len(hits)} matching samples"
    return hits[0]


def first_round_done(status: int, body: bytes | str) -> bool:
    """/-/ready says every target was probed once: it answers 200 earlier, before the dead ones' first timeouts,
    and the tests judge every target. (Not /metrics: a scrape would start the rendering cache.)"""
    return status == 200 and (body if isinstance(body, str) else body.decode()) == "ready\n"


def write_config(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


class AgentProcess:
    """``egov-agent run`` as a real child process, scraped over HTTP."""

    def __init__(self, config: Path, tmp: Path, extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"agent-{self.port}.log"
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [*AGENT, "run", "--config", str(config), "--listen", f"127.0.0.1:{self.port}", *(extra or [])],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if first_round_done(*http_get(self.base + "/-/ready", timeout=1)[::2]):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"agent not ready within {timeout}s:\n{self.log.read_text()}")

    def metrics(self, accept: str | None = None) -> str:
        status, _, body = http_get(self.base + "/metrics", {"Accept": accept} if accept else None)
        assert status == 200
        return body.decode()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator:
    started: list[AgentProcess] = []

    def start(config: Path, extra: list[str] | None = None, ready: bool = True) -> AgentProcess:
        agent = AgentProcess(config, tmp_path, extra)
        started.append(agent)
        if ready:
            agent.wait_ready()
        return agent

    yield start
    for agent in started:
        agent.stop()


class TcpPeers:
    """Real listening sockets on distinct loopback addresses; ``closed`` ones refuse connections."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []

    def listening(self, host: str) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        s.listen(64)
        self.sockets.append(s)
        return s.getsockname()[1]

    def closed(self, host: str) -> int:
        """A port nothing listens on (bound and released)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return s.getsockname()[1]

    def close(self) -> None:
        for s in self.sockets:
            s.close()


@pytest.fixture
def tcp_peers() -> Iterator[TcpPeers]:
    peers = TcpPeers()
    yield peers
    peers.close()


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's prometheus package (scripts/test does)")
    return path
