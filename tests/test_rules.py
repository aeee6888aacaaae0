"""Generated rules: promtool accepts them, and promtool's unit tests show each alert firing when it should."""

from __future__ import annotations

import re
import subprocess
import textwrap
from functools import partial
from pathlib import Path

import yaml
from conftest import REPO, promtool, write_config

from agent.config import load_config
from exporters.rules import build_rules

PROVINCE = """\
province: {code: t, name_vi: Tỉnh Thử, name_en: Test}
levels: [province, district, commune, site]
units:
  - id: p
    name_vi: P
    level: province
    children:
      - id: d1
        name_vi: Huyện Một
        level: district
        children:
          - {id: c1, name_vi: Xã 1, level: commune}
          - {id: c2, name_vi: Xã 2, level: commune}
      - id: d2
        name_vi: Huyện Hai
        level: district
        children:
          - {id: c3, name_vi: Xã 3, level: commune}
          - {id: thdl, name_vi: THDL, level: site}
collectors:
  tcp: {interval: 30s, timeout: 5s}
  power: {interval: 30s, timeout: 5s, settings: {temperature_high_celsius: 28}}
targets:
  - {id: ups1, unit: thdl, collector: power, params: {host: 127.0.0.1, profile: ups_mib, community: "env:NONE"}}
  - {id: c1-link, unit: c1, collector: tcp, tags: [wan_link], params: {host: 127.0.0.1, port: 1}}
  - {id: c2-link, unit: c2, collector: tcp, tags: [wan_link], params: {host: 127.0.0.1, port: 1}}
  - {id: c3-link, unit: c3, collector: tcp, tags: [wan_link], params: {host: 127.0.0.1, port: 1}}
  - {id: sys1, unit: thdl, collector: tcp, tags: [thdl], params: {host: 127.0.0.1, port: 1}}
kpis:
  - id: communes
    class: direct
    title_vi: Xã kết nối
    title_en: Communes connected
    citation: {document: 59/KH-UBND, date: 2019-03-29, section: II.1.2.1, quote: "100% các xã"}
    measure: {kind: coverage, select: {tags: [wan_link], level: commune}, unit_up: all, group_by: district}
    targets: [{phase: "2019-2020", deadline: 2020-12-31, comparator: "=", value: 100%}]
  - id: systems_availability
    class: direct
    title_vi: Sẵn sàng
    title_en: Availability
    measure: {kind: availability, select: {collector: tcp, tags: [thdl]}, window: 30d}
    targets: [{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 99%, origin: ops}]
"""

TARGET_LABELS = 'collector="tcp",level="commune",province="p",site=""'
SYS1 = 'collector="tcp",target="sys1",unit="thdl",level="site",province="p",district="d2",commune="",site="thdl"'
UPS1 = 'collector="power",target="ups1",unit="thdl",level="site",province="p",district="d2",commune="",site="thdl"'
UPS1_LABELS = "collector: power, target: ups1, unit: thdl, level: site, province: p, district: d2, site: thdl"
C = {i: f'{TARGET_LABELS},target="c{i}-link",unit="c{i}",district="d{1 if i < 3 else 2}",commune="c{i}"'
     for i in (1, 2, 3)}
# The agent's member series of the KPI "communes" (egov_kpi_member_up and its seconds counters).
M = {i: f'province="p",kpi="communes",unit="c{i}",district="d{1 if i < 3 else 2}",commune="c{i}"' for i in (1, 2, 3)}


def generated(tmp_path: Path) -> Path:
    loaded = load_config(write_config(tmp_path / "province.yml", PROVINCE), resolve_secrets=False)
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(build_rules(loaded), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120)


def test_generated_rules_pass_promtool_check(tmp_path: Path) -> None:
    result = run_promtool("check", "rules", str(generated(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = load_config(REPO / "config" / "provinces" / "bac-giang.yml", resolve_secrets=False)
    path = tmp_path / "bg.yml"
    path.write_text(yaml.safe_dump(build_rules(loaded), allow_unicode=True), encoding="utf-8")
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_bilingual_and_routable(tmp_path: Path) -> None:
    rules = yaml.safe_load(generated(tmp_path).read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} >= {"EgovKpiBelowTarget", "EgovKpiBelowTargetCritical", "EgovUnitDown",
                                             "EgovGroupAllDown", "EgovAvailabilityBurnRate", "EgovAgentDown",
                                             "EgovCollectorStale", "EgovHostedSystemDown", "EgovKpiStale",
                                             "EgovUpsOnBattery", "EgovUpsLowRuntime", "EgovTemperatureHigh"}
    for alert in alerts:
        assert alert["annotations"]["summary_vi"] and alert["annotations"]["summary_en"], alert["alert"]
        assert alert["annotations"]["runbook"], alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical")


def test_periods_follow_the_province_definition(tmp_path: Path) -> None:
    """59/KH-UBND's quarters begin on 10/12, 10/3, 10/6 and 10/9; the year stays the calendar year."""
    import datetime as dt

    text = PROVINCE + "reporting: {quarter_start_month: 12, quarter_start_day: 10}\n"
    loaded = load_config(write_config(tmp_path / "bg.yml", text), resolve_secrets=False)
    now = dt.datetime(2027, 1, 5, 12, tzinfo=dt.UTC).timestamp()
    hourly = next(g for g in build_rules(loaded, now=now)["groups"] if g["name"] == "egov_hourly")
    starts = {kind: sorted({r["labels"]["period_start"] for r in hourly["rules"]
                            if r.get("labels", {}).get("period") == kind}) for kind in ("quarter", "year")}
    assert starts["quarter"][:4] == ["2026-12-10", "2027-03-10", "2027-06-10", "2027-09-10"]
    assert starts["year"] == ["2027-01-01", "2028-01-01", "2029-01-01"]


VALUES = {"EgovKpiBelowTarget": "50m", "EgovKpiBelowTargetCritical": "50m", "EgovGroupAllDown": "2"}


def _label(labels: dict, match: re.Match) -> str:
    return str(labels.get(match.group(1), ""))


def with_annotations(tests: dict, rules_path: Path) -> dict:
    """promtool compares annotations too: render each expected alert's from the generated rule.

    Only ``{{ $labels.x }}`` and the value placeholder occur in our templates; the value each case
    expects is in VALUES, or in a ``value:`` key of the expected alert (removed before promtool)."""
    rules = yaml.safe_load(rules_path.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            for alert in check.get("exp_alerts", []):
                labels = alert["exp_labels"]
                value = alert.pop("value", VALUES.get(check["alertname"], ""))
                rule = next(r for r in alerts if r["alert"] == check["alertname"]
                            and all(labels.get(k) == v for k, v in r["labels"].items()))
                rendered = {}
                for key, template in rule["annotations"].items():
                    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", partial(_label, labels), template)
                    text = re.sub(r"\{\{ \$value[^}]*\}\}", value, text)
                    rendered[key] = text
                alert["exp_annotations"] = rendered
    return tests


def test_alerts_fire_under_promtool(tmp_path: Path) -> None:
    rules = generated(tmp_path)
    kpi_info = ('egov_kpi_info{kpi="communes",title_vi="Xã kết nối",title_en="Communes connected",'
                'document="59/KH-UBND",section="II.1.2.1"}')
    tests = textwrap.dedent(f"""\
    rule_files: [{rules.name}]
    evaluation_interval: 1m
    tests:
      # 2 of 3 communes connected against 100%, deadline far ahead (t=0 is 1970): short by 1/3 -> critical.
      - interval: 1m
        input_series:
          - series: 'egov_kpi_numerator{{kpi="communes"}}'
            values: '2x30'
          - series: 'egov_kpi_denominator{{kpi="communes"}}'
            values: '3x30'
          - series: 'egov_kpi_target{{kpi="communes",phase="2019-2020",comparator="=",origin="plan",bound=""}}'
            values: '1x30'
          - series: 'egov_kpi_target_deadline_timestamp_seconds{{kpi="communes",phase="2019-2020",origin="plan"}}'
            values: '1609434000x30'
          - series: '{kpi_info}'
            values: '1x30'
        alert_rule_test:
          - eval_time: 20m
            alertname: EgovKpiBelowTargetCritical
            exp_alerts:
              - exp_labels: {{severity: critical, kpi: communes, title_vi: "Xã kết nối", origin: plan,
                              title_en: "Communes connected", document: "59/KH-UBND", section: "II.1.2.1"}}
                value: 333.3m
          - eval_time: 20m
            alertname: EgovKpiBelowTarget
            exp_alerts: []
      # 19 of 20 against 100% before the deadline (25 min): short by 5% -> warning; 15 min after it -> critical.
      - interval: 1m
        input_series:
          - series: 'egov_kpi_numerator{{kpi="communes"}}'
            values: '19x50'
          - series: 'egov_kpi_denominator{{kpi="communes"}}'
            values: '20x50'
          - series: 'egov_kpi_target{{kpi="communes",phase="2019-2020",comparator="=",origin="plan",bound=""}}'
            values: '1x50'
          - series: 'egov_kpi_target_deadline_timestamp_seconds{{kpi="communes",phase="2019-2020",origin="plan"}}'
            values: '1500x50'
          - series: '{kpi_info}'
            values: '1x50'
        alert_rule_test:
          - eval_time: 20m
            alertname: EgovKpiBelowTarget
            exp_alerts:
              - exp_labels: {{severity: warning, kpi: communes, title_vi: "Xã kết nối", origin: plan,
                              title_en: "Communes connected", document: "59/KH-UBND", section: "II.1.2.1"}}
          - eval_time: 20m
            alertname: EgovKpiBelowTargetCritical
            exp_alerts: []
          - eval_time: 45m
            alertname: EgovKpiBelowTargetCritical
            exp_alerts:
              - exp_labels: {{severity: critical, kpi: communes, title_vi: "Xã kết nối", origin: plan,
                              title_en: "Communes connected", document: "59/KH-UBND", section: "II.1.2.1"}}
      # Commune c1 loses its link: one EgovUnitDown. Then all of d1 goes down: EgovGroupAllDown for d1.
      - interval: 1m
        input_series:
          - series: 'egov_kpi_member_up{{{M[1]}}}'
            values: '1 1 0x30'
          - series: 'egov_kpi_member_up{{{M[2]}}}'
            values: '1x12 0x20'
          - series: 'egov_kpi_member_up{{{M[3]}}}'
            values: '1x32'
        alert_rule_test:
          - eval_time: 10m
            alertname: EgovUnitDown
            exp_alerts:
              - exp_labels: {{severity: warning, kpi: communes, unit: c1, province: p, district: d1, commune: c1}}
          - eval_time: 10m
            alertname: EgovGroupAllDown
            exp_alerts: []
          - eval_time: 20m
            alertname: EgovGroupAllDown
            exp_alerts:
              - exp_labels: {{severity: critical, province: p, kpi: communes, district: d1}}
      # The hosted system fails half of its probes: every window burns far faster than 14.4 x 1%.
      - interval: 1m
        input_series:
          - series: 'egov_target_probes_total{{{SYS1}}}'
            values: '0+10x90'
          - series: 'egov_target_probe_successes_total{{{SYS1}}}'
            values: '0+5x90'
          - series: 'egov_target_info{{{SYS1},name="",tags=",thdl,"}}'
            values: '1x90'
        alert_rule_test:
          - eval_time: 80m
            alertname: EgovAvailabilityBurnRate
            exp_alerts:
              - exp_labels: {{severity: critical, kpi: systems_availability, window: "1h/5m"}}
              - exp_labels: {{severity: critical, kpi: systems_availability, window: "6h/30m"}}
              - exp_labels: {{severity: warning, kpi: systems_availability, window: "1d/2h"}}
              - exp_labels: {{severity: warning, kpi: systems_availability, window: "3d/6h"}}
      # UPS ups1 loses mains at 2m, its runtime falls under 10 minutes at 12m; the room passes the 28 °C set here.
      - interval: 1m
        input_series:
          - series: 'egov_ups_on_battery{{{UPS1}}}'
            values: '0 0 1x20'
          - series: 'egov_ups_battery_runtime_seconds{{{UPS1}}}'
            values: '2400x5 900x5 300x12'
          - series: 'egov_env_temperature_celsius{{{UPS1},sensor="internal-1"}}'
            values: '25x5 28.5x20'
        alert_rule_test:
          - eval_time: 1m
            alertname: EgovUpsOnBattery
            exp_alerts: []
          - eval_time: 5m
            alertname: EgovUpsOnBattery
            exp_alerts:
              - exp_labels: {{severity: critical, {UPS1_LABELS}}}
          - eval_time: 9m
            alertname: EgovUpsLowRuntime
            exp_alerts: []
          - eval_time: 15m
            alertname: EgovUpsLowRuntime
            exp_alerts:
              - exp_labels: {{severity: critical, {UPS1_LABELS}}}
                value: 5m 0s
          - eval_time: 12m
            alertname: EgovTemperatureHigh
            exp_alerts: []
          - eval_time: 20m
            alertname: EgovTemperatureHigh
            exp_alerts:
              - exp_labels: {{severity: warning, sensor: internal-1, {UPS1_LABELS}}}
                value: "28.5"
      # The agent stops answering scrapes.
      - interval: 1m
        input_series:
          - series: 'up{{job="egov-agent",instance="thdl:9747"}}'
            values: '1 1 0x10'
        alert_rule_test:
          - eval_time: 9m
            alertname: EgovAgentDown
            exp_alerts:
              - exp_labels: {{severity: critical, job: egov-agent, instance: "thdl:9747"}}
      # The agent's own loop falls behind for six minutes (CPU starvation): it says so, then stops saying it.
      - interval: 1m
        input_series:
          - series: 'egov_agent_overloaded{{job="egov-agent",instance="thdl:9747"}}'
            values: '0 0 1x6 0x6'
        alert_rule_test:
          - eval_time: 3m
            alertname: EgovAgentOverloaded
            exp_alerts: []
          - eval_time: 6m
            alertname: EgovAgentOverloaded
            exp_alerts:
              - exp_labels: {{severity: warning, job: egov-agent, instance: "thdl:9747"}}
          - eval_time: 12m
            alertname: EgovAgentOverloaded
            exp_alerts: []
    """)
    test_file = tmp_path / "alerts.test.yml"
    test_file.write_text(yaml.safe_dump(with_annotations(yaml.safe_load(tests), rules), allow_unicode=True),
                         encoding="utf-8")
    result = run_promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_alertmanager_configuration_is_valid() -> None:
    import shutil

    amtool = shutil.which("amtool")
    assert amtool, "amtool not found: install Debian's prometheus-alertmanager (scripts/test does)"
    example = REPO / "config" / "alertmanager" / "alertmanager.example.yml"
    result = subprocess.run([amtool, "check-config", str(example)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_ops_objective_is_never_reported_as_a_plan_target(tmp_path: Path) -> None:
    """systems_availability has only an ops objective (99%): at 90% it raises EgovOpsObjectiveMissed,
    without a citation, and never EgovKpiBelowTarget."""
    rules = generated(tmp_path)
    tests = textwrap.dedent("""\
    rule_files: [RULES]
    evaluation_interval: 1m
    tests:
      - interval: 1m
        input_series:
          - series: 'egov_kpi_numerator{KEY}'
            values: '9x30'
          - series: 'egov_kpi_denominator{KEY}'
            values: '10x30'
          - series: 'egov_kpi_target{KEY,phase="ops",comparator=">=",origin="ops",bound=""}'
            values: '0.99x30'
          - series: 'egov_kpi_info{KEY,title_vi="Sẵn sàng",title_en="Availability",document="",section=""}'
            values: '1x30'
        alert_rule_test:
          - eval_time: 20m
            alertname: EgovOpsObjectiveMissed
            exp_alerts:
              - exp_labels: {severity: warning, province: t, kpi: systems_availability, origin: ops,
                             title_vi: "Sẵn sàng", title_en: "Availability"}
                value: 90m
          - eval_time: 20m
            alertname: EgovKpiBelowTarget
            exp_alerts: []
          - eval_time: 20m
            alertname: EgovKpiBelowTargetCritical
            exp_alerts: []
    """).replace("RULES", rules.name).replace("KEY", 'province="t",kpi="systems_availability"')
    test_file = tmp_path / "ops.test.yml"
    test_file.write_text(yaml.safe_dump(with_annotations(yaml.safe_load(tests), rules), allow_unicode=True),
                         encoding="utf-8")
    result = run_promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
    annotations = next(r["annotations"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]
                       if r.get("alert") == "EgovOpsObjectiveMissed")
    assert "document" not in str(annotations) and "59/KH-UBND" not in str(annotations)


def test_the_period_form_counts_a_unit_connected_only_if_up_most_of_the_period(tmp_path: Path) -> None:
    """«230/230 xã kết nối» over a quarter, by hand: in 60 minutes c2 is up all the time (100% ≥ 95%),
    c1 half of it (50% < 95%), and c3 reports nothing (no data counts against). Connected: 1 of the
    3 communes the inventory holds, whatever answered."""
    loaded = load_config(write_config(tmp_path / "province.yml", PROVINCE), resolve_secrets=False)
    path = tmp_path / "rules.yml"
    # now=0: the current quarter is the one holding t=0, where promtool's series start; the hourly
    # rules' window follows the 1m evaluation interval (they tile time).
    path.write_text(yaml.safe_dump(build_rules(loaded, now=0, evaluation_interval="1m"), allow_unicode=True,
                                   sort_keys=False), encoding="utf-8")
    period = 'province="p", kpi="communes", period="quarter", period_start="1970-01-01"'
    tests = textwrap.dedent(f"""\
    rule_files: [{path.name}]
    evaluation_interval: 1m
    tests:
      - interval: 30s
        input_series:
          - series: 'egov_kpi_member_up_seconds_total{{{M[1]}}}'
            values: '0+15x130'
          - series: 'egov_kpi_member_observed_seconds_total{{{M[1]}}}'
            values: '0+30x130'
          - series: 'egov_kpi_member_up_seconds_total{{{M[2]}}}'
            values: '0+30x130'
          - series: 'egov_kpi_member_observed_seconds_total{{{M[2]}}}'
            values: '0+30x130'
        promql_expr_test:
          - expr: round(kpi_member:egov_kpi_member_up:ratio_period{{period="quarter", unit="c1"}}, 0.01)
            eval_time: 60m
            exp_samples:
              - labels: '{{{M[1]}, period="quarter", period_start="1970-01-01"}}'
                value: 0.5
          - expr: kpi:egov_kpi_period_coverage_numerator:sum{{period="quarter"}}
            eval_time: 60m
            exp_samples:
              - labels: '{{__name__="kpi:egov_kpi_period_coverage_numerator:sum", {period}}}'
                value: 1
          - expr: kpi:egov_kpi_period_coverage:ratio{{period="quarter"}}
            eval_time: 60m
            exp_samples:
              - labels: '{{__name__="kpi:egov_kpi_period_coverage:ratio", {period}, connected_min_up="0.95"}}'
                value: 0.3333333333333333
    """)
    test_file = tmp_path / "period.test.yml"
    test_file.write_text(tests, encoding="utf-8")
    result = run_promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
