"""What the dns kind contributes beside its probe: its alert, checked and unit-tested by promtool, and its
dashboard panels, laid out by exporters/grafana.py with every query valid PromQL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from support.tools import promtool

from collectors import REGISTRY, resolve
from collectors.contrib import BoardContext, RuleContext
from exporters.grafana import dashboard, panel_queries

DNS = REGISTRY.descriptor("dns")
CONTEXT = RuleContext({}, 7 * 3600)  # the province at UTC+07:00


def test_the_alert_is_valid_and_fires_with_the_name_and_the_reason(tmp_path: Path) -> None:
    assert DNS is not None and DNS.rules is not None
    (tmp_path / "dns.rules.yml").write_text(yaml.safe_dump({"groups": resolve(DNS.rules)(CONTEXT)}), encoding="utf-8")
    check = subprocess.run([promtool(), "check", "rules", str(tmp_path / "dns.rules.yml")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    labels = 'collector="dns",target="dns-portal-bg",unit="bg"'
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["dns.rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [
            {"series": f"egov_target_up{{{labels}}}", "values": "1 1 0x10"},
            {"series": f"egov_target_probe_failures_total{{{labels},reason=\"nxdomain\"}}", "values": "0 0 0+1x10"},
            {"series": 'egov_target_info{target="dns-portal-bg",name="Cổng tỉnh Bắc Giang"}', "values": "1x12"},
        ], "alert_rule_test": [
            {"eval_time": "6m", "alertname": "EgovDnsNameNotResolving", "exp_alerts": []},
            {"eval_time": "8m", "alertname": "EgovDnsNameNotResolving", "exp_alerts": [{
                "exp_labels": {"severity": "critical", "collector": "dns", "target": "dns-portal-bg", "unit": "bg"},
                "exp_annotations": {**resolve(DNS.rules)(CONTEXT)[0]["rules"][0]["annotations"],
                                    "summary_vi": "Tên miền Cổng tỉnh Bắc Giang không phân giải được (nxdomain)",
                                    "summary_en": "Name Cổng tỉnh Bắc Giang does not resolve (nxdomain)",
                                    "summary": "Name Cổng tỉnh Bắc Giang does not resolve (nxdomain)"}}]},
        ]}],
    }, allow_unicode=True), encoding="utf-8")
    test = subprocess.run([promtool(), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert test.returncode == 0, test.stdout + test.stderr


def test_the_panels_lay_out_and_query_valid_promql(tmp_path: Path) -> None:
    assert DNS is not None and DNS.panels is not None
    panels = resolve(DNS.panels)(BoardContext("portals"))
    assert resolve(DNS.panels)(BoardContext("wan")) == []
    board = json.loads(json.dumps(dashboard("egov-dns", "dns", panels, [], ["portals"])))
    queries = panel_queries(board)
    assert len(queries) == 7
    # Each query as a recording rule, the dashboard's variables given values: promtool parses every one.
    rules = [{"record": f"check:dns:{i}", "expr": expr.replace("$province", "bac-giang")
              .replace("$__rate_interval", "5m")} for i, (_title, expr) in enumerate(queries)]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}),
                                         encoding="utf-8")
    check = subprocess.run([promtool(), "check", "rules", str(tmp_path / "panels.yml")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
