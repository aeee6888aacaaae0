"""One incident, one alert, counted against the real thing: the simulated Bắc Giang, the agent, Debian's
Prometheus with the generated rules and Alertmanager with the example configuration's inhibitions.

Known faults are injected through the lab's control API: three communes in three districts lose their
link, every unit of district Hiệp Hòa loses its link at once (the district uplink), and a portal goes
down. That is five incidents, so Alertmanager must hold exactly five alerts to notify: three
EgovUnitDown, one EgovGroupAllDown (inhibiting Hiệp Hòa's own EgovUnitDown), one EgovPortalDown, and no
alert for a plan target whose deadline passed years ago.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from support.agent_process import AgentProcess
from support.bac_giang_lab import Lab, speed_up
from support.paths import AGENT, REPO
from support.realstack import Alertmanager, Prometheus, Webhook

from agent.config.loading import load_config
from agent.engine.units import UnitIndex

COMMUNES = ["bg-lg-03", "bg-sd-04", "bg-yt-05"]  # one commune in each of three districts
DISTRICT = "bg-hh"
PORTAL = "portal-noi-vu"
EXAMPLE = REPO / "config" / "alertmanager" / "alertmanager.example.yml"


# The agent's own overload is an incident of its own on a shared machine (two cores, many tests): it is
# real, not injected, and it inhibits nothing counted here, so it is left out of the count.
OWN = {"EgovAgentOverloaded"}


def key(labels: dict[str, str]) -> tuple[str, str]:
    """What an alert is about: its unit, district or target."""
    return labels["alertname"], labels.get("target") or labels.get("unit") or labels.get("district") or ""


def notified(alertmanager: Alertmanager) -> list[tuple[str, str]]:
    return sorted(key(a["labels"]) for a in alertmanager.active() if a["labels"]["alertname"] not in OWN)


def test_firing_alerts_equal_the_distinct_incidents(tmp_path: Path) -> None:
    started: list = []
    try:
        lab = Lab(tmp_path, network="127.46.0.0/16")
        started.append(lab)
        speed_up(lab.config)
        rules = tmp_path / "rules.yml"
        subprocess.run([*AGENT, "rules", "--config", str(lab.config), "-o", str(rules), "--evaluation-interval",
                        "5s", "--alert-for", "20s"], check=True, cwd=REPO, capture_output=True, timeout=60)
        agent = AgentProcess(lab.config, tmp_path)
        started.append(agent)
        agent.wait_ready(timeout=90)
        webhook = Webhook()
        started.append(webhook)
        inhibitions = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["inhibit_rules"]
        alertmanager = Alertmanager(tmp_path, webhook.url, inhibitions)
        started.append(alertmanager)
        prometheus = Prometheus(tmp_path, "prometheus", {"egov-agent": [f"127.0.0.1:{agent.port}"]}, rules,
                                alertmanager.address)
        started.append(prometheus)

        numerator = 'kpi:egov_kpi_numerator:sum{kpi="wan_commune_coverage_2020"}'
        prometheus.wait_for(numerator, lambda v: v == 230, 300, "all 230 communes up")
        time.sleep(30)  # longer than every alert's for: what fires now fires without a fault
        baseline = notified(alertmanager)
        assert baseline == [], f"alerts with no fault injected: {baseline}"

        loaded = load_config(lab.config, resolve_secrets=False)
        units = UnitIndex(loaded.config)
        district_links = [t.id for t in loaded.config.targets
                          if "wan_link" in t.tags and units.is_under(t.unit, DISTRICT)]
        assert len(district_links) > 20, district_links
        injected = time.time()
        for unit in COMMUNES:
            lab.set(f"{unit}-snmp", "down")
        for target in district_links:
            lab.set(target, "down")
        lab.set(PORTAL, "down")

        expected = sorted([("EgovUnitDown", unit) for unit in COMMUNES] + [("EgovGroupAllDown", DISTRICT),
                                                                            ("EgovPortalDown", PORTAL)])
        deadline = time.monotonic() + 240
        while True:
            got = notified(alertmanager)
            if got == expected or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert got == expected, f"alerts to notify {got}, incidents {expected}"
        time.sleep(30)  # and nothing more arrives once the faults have settled (burn rates, KPI alerts)
        assert notified(alertmanager) == expected
        alerts = [a for a in alertmanager.active() if a["labels"]["alertname"] not in OWN]

        # Before inhibition, Prometheus fires one EgovUnitDown per Hiệp Hòa unit besides: never one per KPI.
        firing = prometheus.firing()
        unit_alerts = [a["labels"]["unit"] for a in firing if a["labels"]["alertname"] == "EgovUnitDown"]
        assert len(unit_alerts) == len(set(unit_alerts)), "a unit has more than one EgovUnitDown"
        district_units = {t.unit for t in loaded.config.targets if t.id in district_links}
        # The portal's own department counts as down in the coverage of portals: inhibited by EgovPortalDown.
        portal_unit = next(t.unit for t in loaded.config.targets if t.id == PORTAL)
        assert set(unit_alerts) == set(COMMUNES) | district_units | {portal_unit}
        assert not [a for a in firing if a["labels"]["alertname"].startswith("EgovKpi")], \
            "a plan target's shortfall alerted"

        # The texts name the commune and its district, and what failed there.
        by_unit = {a["labels"].get("unit"): a for a in alerts}
        commune = by_unit["bg-lg-03"]["annotations"]
        # ... and since when, in the province's clock: the first failed probe after the fault, within a minute.
        match = re.fullmatch(r"Xã số 03 \(Lạng Giang\) \(Huyện Lạng Giang\) mất kết nối từ (\d\d:\d\d) ngày "
                             r"(\d\d/\d\d)", commune["summary_vi"])
        assert match, commune
        local = ZoneInfo(loaded.config.province.timezone)
        fault = dt.datetime.fromtimestamp(injected, local).replace(tzinfo=None, second=0, microsecond=0)
        since = dt.datetime.strptime(f"{fault.year}/{match[2]} {match[1]}", "%Y/%d/%m %H:%M")
        assert fault <= since <= fault + dt.timedelta(minutes=1), (commune["summary_vi"], fault)
        assert "(UTC+07:00)" in commune["summary_en"], commune
        failed = "Hỏng / Failed: Bộ định tuyến WAN: Xã số 03 (Lạng Giang) (SNMP); \n"
        assert commune["description"].startswith(failed), commune
        district = next(a for a in alerts if a["labels"]["alertname"] == "EgovGroupAllDown")
        assert "Huyện Hiệp Hòa" in district["annotations"]["summary_vi"]
        assert "Hiep Hoa District" in district["annotations"]["summary_en"]
        assert district["annotations"]["runbook_url"] == "docs/runbooks/EgovGroupAllDown.md"
    finally:
        for part in reversed(started):
            part.stop() if hasattr(part, "stop") else part.close()
