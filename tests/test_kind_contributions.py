"""What a kind brings beyond its probe (its simulator, alert rules and dashboard panels) is found through its
descriptor: the lab, the rules and the dashboards name no kind, so a kind changes them by its package alone."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from support.paths import REPO
from support.province import write_config

from agent.config.loading import load_config
from agent.lab import Lab
from collectors import REGISTRY
from collectors.contrib import TARGETS_GROUP, BoardContext, Panel, Query, RuleContext, alert, target_down
from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase
from exporters.grafana import dashboards
from exporters.rules import build_rules

NETWORK = ipaddress.ip_network("127.0.27.0/24")
BAC_GIANG = REPO / "config" / "provinces" / "bac-giang.yml"
PROVINCE = """\
province: {code: t, name_vi: Tỉnh Thử, name_en: Test}
levels: [province, commune]
units:
  - id: p
    name_vi: P
    level: province
    children:
      - {id: c1, name_vi: Xã 1, level: commune}
      - {id: c2, name_vi: Xã 2, level: commune}
collectors:
  tcp: {interval: 30s, timeout: 5s}
targets:
  - {id: app1, unit: c1, collector: tcp, params: {host: 10.40.0.1, port: 443}}
  - {id: app2, unit: c2, collector: tcp, params: {host: 10.40.0.2, port: 443}}
"""


def _with(kind: str, monkeypatch: pytest.MonkeyPatch, **references: str) -> None:
    """The kind's descriptor with some references pointing at this module, for this test only."""
    descriptor = REGISTRY.descriptors[kind]
    monkeypatch.setitem(REGISTRY.descriptors, kind, dataclasses.replace(descriptor, **references))


class EchoSimulator(SimulatorBase):
    """A stand-in simulator of the tcp kind: it records what the lab asked and asks the lab for a peer."""

    kind = "tcp"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None) -> None:
        super().__init__(pool, seed, peers)
        self.calls: list[str] = []
        self.state: dict[str, str] = {}

    async def start(self) -> None:
        self.calls.append("start")

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        self.calls.append(f"add {target_id}")
        self.state[target_id] = "up"
        return {**params, "host": self.pool.take(params["host"])}

    async def set_state(self, target_id: str, state: str) -> None:
        self.state[target_id] = state

    def states(self) -> dict[str, str]:
        return dict(self.state)

    async def close(self) -> None:
        self.calls.append("close")


def test_the_lab_starts_the_simulator_the_kinds_descriptor_names_and_only_the_provinces_kinds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with("tcp", monkeypatch, simulator="test_kind_contributions:EchoSimulator")
    lab = Lab(write_config(tmp_path / "province.yml", PROVINCE), down_ratio=0, network=NETWORK)

    async def run() -> dict[str, Any]:
        try:
            data = await lab.start()
            await lab.set_state("app2", "down")
            return data
        finally:
            await lab.close()

    data = asyncio.run(run())
    assert sorted(lab.simulators) == ["tcp"]  # no SNMP, HTTP... simulator for a province without those kinds
    simulator = lab.simulators["tcp"]
    assert isinstance(simulator, EchoSimulator)
    assert simulator.calls == ["start", "add app1", "add app2", "close"]
    assert lab.states() == {"app1": "up", "app2": "down"}
    assert [t["params"]["host"] for t in data["targets"]] == ["127.0.27.1", "127.0.27.2"]


def test_the_mcu_lists_as_registered_the_sip_endpoints_the_lab_gives_it(tmp_path: Path) -> None:
    lab = Lab(write_config(tmp_path / "province.yml", PROVINCE), network=NETWORK)

    async def run() -> list[list[str]]:
        mcu = lab.simulator("mcu")
        sip = lab.simulator("sip")
        assert mcu is not None and sip is not None
        seen = [mcu.registered()]  # type: ignore[attr-defined]
        try:
            await sip.add("vc1", {"host": "10.50.0.1", "user": "c1"}, True)
            await sip.add("vc2", {"host": "10.50.0.2", "user": "c2"}, True)
            seen.append(mcu.registered())  # type: ignore[attr-defined]
            await sip.set_state("vc2", "refused")
            seen.append(mcu.registered())  # type: ignore[attr-defined]
        finally:
            await lab.close()
        return seen

    assert asyncio.run(run()) == [[], ["c1", "c2"], ["c1"]]


def _tcp_rules(context: RuleContext) -> list[dict[str, Any]]:
    return [{"name": TARGETS_GROUP, "rules": [alert("EgovTestAppDown", target_down("tcp"), "warning", "vi", "en",
                                                    "check it")]},
            {"name": "egov_test_tcp", "rules": [{"record": "test:tcp_up:sum", "expr": "sum(egov_target_up)"}]}]


def test_a_kinds_rules_come_from_its_descriptor(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_config(BAC_GIANG, resolve_secrets=False)
    _with("tcp", monkeypatch, rules="test_kind_contributions:_tcp_rules")
    groups = build_rules(loaded, now=1_780_000_000)["groups"]
    names = [g["name"] for g in groups]
    assert names.index(TARGETS_GROUP) + 1 == names.index("egov_test_tcp") == names.index("egov_agent") - 1
    alerts = [r["alert"] for r in groups[names.index(TARGETS_GROUP)]["rules"]]
    # In the kinds' order (http, mcu, tcp, power), before the alerts about every collector.
    assert alerts[:6] == ["EgovPortalDown", "EgovTlsCertificateExpiring", "EgovClientCertificateExpiring",
                          "EgovMcuCounterGoingBack", "EgovTestAppDown", "EgovUpsOnBattery"]
    assert "EgovHostedSystemDown" not in alerts


def _host_panels(board: BoardContext) -> list[Panel]:
    if board.board != "datacentre":
        return []
    return [Panel("Test servers", "stat", [Query('count(egov_target_up{collector="host"})')])]


def test_a_kinds_panels_come_from_its_descriptor(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(BAC_GIANG, resolve_secrets=False).config
    _with("host", monkeypatch, panels="test_kind_contributions:_host_panels")
    titles = [p["title"] for p in dashboards(config)["egov-datacentre.json"]["panels"]]
    assert "Test servers" in titles and "CPU" not in titles
    assert titles.index("Test servers") < titles.index("Nguồn điện và môi trường / Power and environment")


def test_every_alert_a_kind_brings_has_its_runbook() -> None:
    """The on-call engineer's link must lead somewhere, for a kind's alerts too, configured anywhere or not."""
    from collectors.contrib import RuleContext, contributions

    for kind, rules in contributions("rules"):
        for group in rules(RuleContext({}, 7 * 3600)):
            for rule in group["rules"]:
                if "alert" in rule:
                    book = REPO / "docs" / "runbooks" / f"{rule['alert']}.md"
                    assert book.is_file(), f"{kind}: {rule['alert']} has no runbook at {book}"
