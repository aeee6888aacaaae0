"""The lab's DNS server (collectors/dns/lab.py) as the dns collector sees it, in each state the lab's control
API can set, over UDP and TCP; and Bắc Giang's portal names asked of it by the agent, through the lab."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dns.asyncquery
import dns.message
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.lab import Lab, write_config
from collectors.dns.lab import DnsSimulator
from collectors.dns.models import DnsParams, DnsSettings
from collectors.dns.probe import DnsCollector
from collectors.lab_addresses import AddressPool

PROVINCE = Path(__file__).resolve().parent.parent / "config" / "provinces" / "bac-giang"
NETWORK = ipaddress.IPv4Network("127.0.25.0/25")  # this kind's tests' share of loopback
RESOLVER = "10.24.0.53"  # the province's resolver as the configuration names it; the lab stands in for it


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_lab_server_states(transport: str) -> None:
    async def run() -> dict[str, tuple[bool, str]]:
        simulator = DnsSimulator(AddressPool(NETWORK))
        collector = DnsCollector(DnsSettings.model_validate({"retransmit_after": 0.3}))
        seen: dict[str, tuple[bool, str]] = {}
        try:
            raw = await simulator.add("dns-bg", {"server": RESOLVER, "name": "bacgiang.gov.vn", "transport": transport,
                                                 "addresses": ["203.0.113.10"], "dnssec": "validated"}, True)
            mx = await simulator.add("dns-bg-mx", {"server": RESOLVER, "name": "bacgiang.gov.vn", "type": "MX",
                                                   "regex": r"^10 mail\.bacgiang"}, False)  # starts down
            params = DnsParams.model_validate(raw)
            assert params.server == mx["server"] and ipaddress.ip_address(params.server) in NETWORK and params.port > 0
            seen["mx-down"] = _outcome(await collector.probe("m", DnsParams.model_validate(mx), 1.0))
            for state in ("up", "down", "nxdomain", "servfail", "refused", "wrong_answer", "dnssec_bogus",
                          "dnssec_insecure", "up"):
                await simulator.set_state("dns-bg", state)
                seen[state if state not in seen else f"{state}-again"] = _outcome(
                    await collector.probe("t", params, 1.0))
            with pytest.raises(ValueError, match="dns targets can be"):
                await simulator.set_state("dns-bg", "flapping")
            with pytest.raises(ValueError, match="wrong_answer is for A and AAAA"):
                await simulator.set_state("dns-bg-mx", "wrong_answer")
            assert simulator.states() == {"dns-bg": "up", "dns-bg-mx": "down"}
        finally:
            await collector.close()
            await simulator.close()
        return seen

    assert asyncio.run(run()) == {
        "mx-down": (False, "timeout"), "up": (True, ""), "down": (False, "timeout"), "nxdomain": (False, "nxdomain"),
        "servfail": (False, "servfail"), "refused": (False, "query_refused"), "wrong_answer": (False, "wrong_answer"),
        "dnssec_bogus": (False, "dnssec_bogus"), "dnssec_insecure": (False, "dnssec_insecure"),
        "up-again": (True, ""),
    }


def _outcome(result: Any) -> tuple[bool, str]:
    return result.up, result.reason


def _portal_names() -> list[tuple[str, str, str]]:
    """(http target id, its unit, its URL's host) of every portal and web system of Bắc Giang."""
    targets = yaml.safe_load((PROVINCE / "portals.yml").read_text(encoding="utf-8"))["targets"]
    return [(t["id"], t["unit"], urlsplit(t["params"]["url"]).hostname) for t in targets if t["collector"] == "http"]


FAULTS = {"dns-portal-tu-phap": "nxdomain", "dns-portal-hh": "servfail", "dns-web-dvc": "down",
          "dns-portal-bg": "wrong_answer"}


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> tuple[Agent, dict[str, Any], dict[str, str]]:
    """The lab of Bắc Giang's portals with a dns target for each portal's name, some faults set, probed once."""
    tmp = tmp_path_factory.mktemp("bg-dns")
    names = _portal_names()
    targets: list[dict[str, Any]] = [{"id": f"dns-{tid}", "unit": unit, "collector": "dns", "tags": ["portal_dns"],
                "params": {"server": RESOLVER, "name": host}} for tid, unit, host in names]
    targets[0]["params"]["addresses"] = ["203.0.113.10"]  # the provincial portal's published address
    (tmp / "dns.yml").write_text(yaml.safe_dump({"targets": targets}), encoding="utf-8")
    config = tmp / "bac-giang.yml"
    config.write_text(f"""\
province: {{code: bac-giang, name_vi: Tỉnh Bắc Giang, name_en: Bac Giang Province}}
levels: [province, district, commune, department, site]
include: [{PROVINCE / 'units.yml'}, {PROVINCE / 'portals.yml'}, {tmp / 'dns.yml'}]
collectors:
  http: {{interval: 60s, timeout: 5s, concurrency: 64, settings: {{threads: 16}}}}
  dns: {{interval: 60s, timeout: 2s, concurrency: 64, settings: {{retransmit_after: 0.5s}}}}
""", encoding="utf-8")

    async def main() -> tuple[Agent, dict[str, Any], dict[str, str]]:
        lab = Lab(config, down_ratio=0.0, network=NETWORK)
        try:
            data = await lab.start()
            for target, state in FAULTS.items():
                await lab.set_state(target, state)
            write_config(data, tmp / "agent.yml")
            agent = Agent(load_config(tmp / "agent.yml"))
            await agent.collect_once()
            answers = {}
            for target in data["targets"]:
                if target["collector"] == "dns" and target["id"] not in FAULTS:
                    p = target["params"]
                    response = await dns.asyncquery.udp(dns.message.make_query(p["name"], "A"), p["server"], 2.0,
                                                        p["port"])
                    answers[target["id"]] = response.answer[0][0].to_text()
            return agent, data, answers
        finally:
            await lab.close()

    mp = pytest.MonkeyPatch()
    mp.setenv("EGOV_AGENT_PROBE_ALLOW", "127.0.0.0/8,::1/128")
    try:
        return asyncio.run(main())
    finally:
        mp.undo()


def test_every_portal_name_resolves_but_the_faulty(province: tuple[Agent, dict[str, Any], dict[str, str]]) -> None:
    agent, _data, _answers = province
    states = {t: s.result for t, s in agent.states().items() if t.startswith("dns-") and s.result is not None}
    assert len(states) == len(_portal_names()) == 44
    down = {t: r.reason for t, r in states.items() if not r.up}
    assert down == {"dns-portal-tu-phap": "nxdomain", "dns-portal-hh": "servfail", "dns-web-dvc": "timeout",
                    "dns-portal-bg": "wrong_answer"}


def test_a_portal_name_resolves_to_the_lab_portal(province: tuple[Agent, dict[str, Any], dict[str, str]]) -> None:
    """In the lab the name and the portal meet: its A record is the address the portal's simulator listens on."""
    _agent, data, answers = province
    portal_address = {t["id"]: t["params"]["address"] for t in data["targets"] if t["collector"] == "http"}
    assert answers and all(answers[f"dns-{tid}"] == portal_address[tid] for tid, _, _ in _portal_names()
                           if f"dns-{tid}" in answers)


def test_the_exposition_carries_the_dns_families(province: tuple[Agent, dict[str, Any], dict[str, str]]) -> None:
    agent, _data, _answers = province
    text = agent.exposition.render(None)[0].decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    ok = {s.labels["target"]: s.value for s in families["egov_dns_answer_ok"].samples}
    assert ok["dns-portal-vp-ubnd"] == 1 and ok["dns-portal-bg"] == 0
    lookup = next(s for s in families["egov_dns_lookup_seconds"].samples if s.labels["target"] == "dns-portal-hh")
    assert lookup.labels["district"] == "bg-hh" and 0 < lookup.value < 2
