"""Fixtures and hooks only: what tests import lives in tests/support/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.agent_process import AgentProcess
from support.markers import KINDS, kinds_of
from support.net import TcpPeers

# Tests only ever probe loopback: a configuration naming any other address is refused by the agent.
os.environ["EGOV_AGENT_PROBE_ALLOW"] = "127.0.0.0/8,::1/128"
# ... and the credentials of its application sources (config/provinces/bac-giang/apps.yml).
for _name in ("EGOV_BG_QLVB_TOKEN", "EGOV_BG_MOTCUA_PASSWORD", "EGOV_BG_DVC_DB_PASSWORD", "EGOV_BG_MAIL_TOKEN",
              "EGOV_BG_HOP_TOKEN", "EGOV_BG_TINH_UY_TOKEN", "EGOV_BG_SSO_TOKEN", "EGOV_BG_LGSP_TOKEN",
              "EGOV_BG_BAO_CAO_TOKEN"):
    os.environ.setdefault(_name, "test-" + _name.lower())


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


@pytest.fixture
def tcp_peers() -> Iterator[TcpPeers]:
    peers = TcpPeers()
    yield peers
    peers.close()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every test from support/markers.py's table; a test with no kind, or two, stops the run."""
    for item in items:
        found = kinds_of(item.path.name, getattr(item, "originalname", item.name))
        if found is None:
            continue
        kind, root = found
        if not any(item.get_closest_marker(k) for k in KINDS):
            item.add_marker(kind)
        if root:
            item.add_marker("root")
    wrong = [item.nodeid for item in items if sum(item.get_closest_marker(k) is not None for k in KINDS) != 1]
    if wrong:
        raise pytest.UsageError(f"{len(wrong)} tests carry no kind or more than one of {', '.join(KINDS)} "
                                "(add the module to tests/support/markers.py):\n  " + "\n  ".join(wrong[:20]))
