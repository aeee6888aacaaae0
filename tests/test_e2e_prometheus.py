"""Proof against the real thing: Debian's Prometheus and Alertmanager, the generated rules and dashboards,
the agent monitoring the simulated Bắc Giang, and faults injected through the lab.

One agent is scraped by one Prometheus (which alerts through Alertmanager to a webhook receiver);
two agents started with --shard 1/2 and 2/2 on the same configuration are scraped by a second
Prometheus with the same rules, and both must give the same province-wide KPIs.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from support.agent_process import AgentProcess
from support.bac_giang_lab import Lab, speed_up
from support.grafana import KPI_VALUED, defaults, effective_unit, substitute
from support.paths import AGENT, REPO
from support.realstack import Alertmanager, Prometheus, Webhook

from agent.config.loading import load_config
from exporters.grafana import GRAFANA_UNITS, dashboards

PROVINCE = REPO / "config" / "provinces" / "bac-giang.yml"
COVERAGE = "wan_commune_coverage_2020"
PORTAL = "portal-noi-vu"
DOWN_COMMUNES = ["bg-hh-01", "bg-hh-02", "bg-lg-03", "bg-sd-04", "bg-yt-05"]


def real_figures(config: Path) -> None:
    """Real (not example) manual figures for a KPI of each unit the probes do not give: a VND amount and a
    count below their targets, a plain value; the demo's manual file has example rows only."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    manual = Path(data["manual"]["file"])
    today = time.strftime("%Y-%m-%d")
    rows = [f"ict_output_value_2020,{today},e2e,48500000000000,,,", f"shared_provincial_db_count_2020,{today},e2e,4,,,",
            f"thdl_tcvn9250,{today},e2e,1,,,"]
    copy = config.parent / "manual.csv"
    copy.write_text(manual.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data["manual"]["file"] = str(copy)
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture
def stack(tmp_path: Path):
    started: list = []
    try:
        lab = Lab(tmp_path)
        started.append(lab)
        speed_up(lab.config)
        real_figures(lab.config)
        rules = tmp_path / "rules.yml"
        subprocess.run([*AGENT, "rules", "--config", str(lab.config), "-o", str(rules), "--evaluation-interval", "5s",
                        "--alert-for", "4s"], check=True, cwd=REPO, capture_output=True, timeout=60)
        single = AgentProcess(lab.config, tmp_path)
        shards = [AgentProcess(lab.config, tmp_path, ["--shard", f"{i}/2"]) for i in (1, 2)]
        started += [single, *shards]
        for agent in (single, *shards):
            agent.wait_ready(timeout=90)
        webhook = Webhook()
        started.append(webhook)
        alertmanager = Alertmanager(tmp_path, webhook.url)
        started.append(alertmanager)
        whole = Prometheus(tmp_path, "whole", {"egov-agent": [f"127.0.0.1:{single.port}"]}, rules,
                           alertmanager.address)
        started.append(whole)
        sharded = Prometheus(tmp_path, "sharded", {"egov-agent": [f"127.0.0.1:{a.port}" for a in shards]}, rules)
        started.append(sharded)
        yield lab, whole, sharded, webhook
    finally:
        for part in reversed(started):
            part.stop() if hasattr(part, "stop") else part.close()


def test_end_to_end(stack) -> None:
    lab, whole, sharded, webhook = stack
    value = f'kpi:egov_kpi_value:province{{kpi="{COVERAGE}"}}'
    numerator = f'kpi:egov_kpi_numerator:sum{{kpi="{COVERAGE}"}}'
    assert whole.wait_for(numerator, lambda v: v == 230, 360, "all 230 communes up") == 230
    assert whole.value(f'kpi:egov_kpi_denominator:sum{{kpi="{COVERAGE}"}}') == 230

    # Five communes lose their link (router silent); a hosted system stops; a router reboots.
    for unit in DOWN_COMMUNES:
        lab.set(f"{unit}-snmp", "down")
    lab.set("thdl-he-thong-01", "down")
    lab.set("bg-hh-10-snmp", "reboot")  # in the district the panels are checked for
    lab.set("bg-hh-01-vc-sip", "down")
    lab.set("bg-hh-vc-sip", "down")  # a district endpoint the MCU is expected to list as registered
    lab.set(PORTAL, "error")
    assert whole.wait_for(numerator, lambda v: v == 225, 180, "five communes down") == 225
    assert whole.value(value) == pytest.approx(225 / 230)
    firing = webhook.wait("firing", 120, alertname="EgovUnitDown", unit="bg-hh-01", district="bg-hh")
    assert "Hiệp Hòa" in firing["annotations"]["summary_vi"] and "Hiep Hoa" in firing["annotations"]["summary_en"]
    # A plan shortfall whose deadline passed (2020) is a report fact: it never notifies.
    assert not [a for n in webhook.notifications for a in n["alerts"] if a["labels"].get("kpi") == COVERAGE]

    # Every panel query of every dashboard returns data through Prometheus's HTTP API.
    whole.wait_for("sum(increase(egov_snmp_reboots_total[1d]))", lambda v: v > 0, 120, "the reboot is seen")
    boards = dashboards(load_config(PROVINCE, resolve_secrets=False).config)
    queries = [(name, panel, target["refId"], substitute(target["expr"], defaults(board)))
               for name, board in boards.items() for panel in board["panels"] for target in panel.get("targets", [])]
    # Columns a KPI without a numeric target leaves empty (a qualitative target, a count met): the table
    # still renders from its value column.
    may_be_empty = re.compile(r"kpi:egov_kpi_(target:max|shortfall:abs|below_target_since:timestamp|"
                              r"target_deadline:max)\b.*unit=\"(count|value|yes_no)\"")
    deadline = time.monotonic() + 300  # new counters need two scrapes before increase() sees them
    while True:
        results = {(name, panel["id"], ref): whole.query(expr) for name, panel, ref, expr in queries}
        empty = [f"{name}: {panel['title']}: {expr}" for name, panel, ref, expr in queries
                 if not results[(name, panel["id"], ref)] and not may_be_empty.search(expr)]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not empty, "panels without data:\n" + "\n".join(empty)
    # Each KPI value, target and shortfall is shown in its KPI's unit: the units come from the agent's series.
    kpi_units = {s["metric"]["kpi"]: s["metric"]["unit"] for s in whole.query("egov_kpi_info")}
    shown = set()
    for name, panel, ref, expr in queries:
        if not KPI_VALUED.search(expr) or re.search(r"\b(count|sum)\(", expr):
            continue
        for series in results[(name, panel["id"], ref)]:
            kpi = series["metric"].get("kpi") or defaults(boards[name]).get("kpi")
            shown.add(kpi_units[kpi])
            assert effective_unit(panel, ref) == GRAFANA_UNITS[kpi_units[kpi]], \
                f"{name}: {panel['title']} shows {kpi} ({kpi_units[kpi]}) as {effective_unit(panel, ref)}"
    assert {"ratio", "count", "vnd", "value", "yes_no"} <= shown, shown

    # Restored: back to 230/230 and the alert resolves.
    for unit in DOWN_COMMUNES:
        lab.set(f"{unit}-snmp", "up")
    lab.set("thdl-he-thong-01", "up")
    lab.set("bg-hh-01-vc-sip", "up")
    lab.set("bg-hh-vc-sip", "up")
    lab.set(PORTAL, "up")
    assert whole.wait_for(numerator, lambda v: v == 230, 180, "communes restored") == 230
    webhook.wait("resolved", 120, alertname="EgovUnitDown", unit="bg-hh-01")

    # Two shards give, through the recording rules, the same province-wide KPIs as one agent.
    def kpis(prometheus: Prometheus) -> dict[str, tuple[float, float]]:
        out = {}
        for expr in ("kpi:egov_kpi_numerator:sum", "kpi:egov_kpi_denominator:sum"):
            for series in prometheus.query(expr):
                kpi = series["metric"]["kpi"]
                out.setdefault(kpi, [0.0, 0.0])[expr.endswith("denominator:sum")] = float(series["value"][1])
        return {k: tuple(v) for k, v in out.items()}

    sharded.wait_for(numerator, lambda v: v == 230, 180, "the shards see the restore")
    time.sleep(12)  # one more probe round, scrape and evaluation on both sides
    one, two = kpis(whole), kpis(sharded)
    assert set(one) == set(two)
    for kpi, (num, den) in one.items():
        if "availability" in kpi:
            # Each agent counts its own probes, and independent probes of a loaded machine do not time
            # out at the same moments: here the claim is the aggregation, the shards' sums.
            # The probe counts grow every second and a scrape can land after the rule ran, so the
            # counts cannot be compared at one instant; their ratio barely moves between two scrapes.
            # A late scrape lands at most one probe round of each shard in between: for the many-target
            # KPIs that moves the ratio by well under 0.005; the one MCU, probed every 15 s, has only a
            # few probes, and one probe per shard moves its ratio by up to 2/probes.
            recorded = sharded.query(f'kpi:egov_kpi_value:province{{kpi="{kpi}"}}')[0]["value"]
            at = float(recorded[0])
            raw = sharded.query(f'sum(egov_kpi_numerator{{kpi="{kpi}"}}) / sum(egov_kpi_denominator{{kpi="{kpi}"}})',
                                at=at)
            probes = float(sharded.query(f'sum(egov_kpi_denominator{{kpi="{kpi}"}})', at=at)[0]["value"][1])
            slack = max(0.005, 2.0 / probes)
            assert float(raw[0]["value"][1]) == pytest.approx(float(recorded[1]), abs=slack), kpi
        else:
            assert two[kpi] == (num, den), kpi
    values_one = {s["metric"]["kpi"]: float(s["value"][1]) for s in whole.query("kpi:egov_kpi_value:province")}
    values_two = {s["metric"]["kpi"]: float(s["value"][1]) for s in sharded.query("kpi:egov_kpi_value:province")}
    assert set(values_one) == set(values_two)
    for kpi, v in values_one.items():
        if "availability" not in kpi:
            assert values_two[kpi] == pytest.approx(v, abs=1e-9), kpi
        else:  # the recorded value is the recorded sums' ratio at the same evaluation
            sample = sharded.query(f'kpi:egov_kpi_value:province{{kpi="{kpi}"}}')[0]["value"]
            num, den = (float(sharded.query(f'kpi:egov_kpi_{part}:sum{{kpi="{kpi}"}}', at=float(sample[0]))[0]
                              ["value"][1]) for part in ("numerator", "denominator"))
            assert float(sample[1]) == pytest.approx(num / den, rel=1e-9), kpi
    print(json.dumps({"kpis": len(values_one), "notifications": len(webhook.notifications)}))
