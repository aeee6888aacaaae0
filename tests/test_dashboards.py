"""Grafana dashboards: generated from the province's configuration, committed as generated, well formed,
each KPI in its own unit; the «below target since» rule under promtool; the command never writes into
the installed packages."""

from __future__ import annotations

import functools
import json
import re
import site
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.grafana import defaults, effective_unit, kpi_unit_of_query, substitute
from support.paths import AGENT, REPO
from support.province import Province, count, coverage
from support.tools import promtool

from agent.config.loading import load_config
from agent.config.schema import Config
from exporters.grafana import GRAFANA_UNITS, dashboards, panel_queries, render_all
from exporters.rules import build_rules

GRAFANA = REPO / "dashboards" / "grafana"
BAC_GIANG = REPO / "config" / "provinces" / "bac-giang.yml"

PLAN = {"document": "01/KH-UBND", "date": "2021-03-01"}


def two_levels(middle: str | None = None) -> Province:
    """Merged in 2025: no districts, the province above its communes (``middle``: a level between them)."""
    p = Province(code="t2", name_vi="Tỉnh Hai Cấp", name_en="Two-level", root="t2")
    if middle:
        p.unit("w1", "Phường Một", level=middle)
    p.unit("x1", "Xã 1", parent="w1" if middle else None).unit("x2", "Xã 2", parent="w1" if middle else None)
    p.collector("tcp", interval="30s", timeout="5s")
    for unit in ("x1", "x2"):
        p.target(f"{unit}-link", unit, "tcp", tags=["wan_link"], params={"host": "127.0.0.1", "port": 1})
    grouped = {"group_by": middle} if middle else {}
    p.kpi("communes", coverage(tags=["wan_link"], level="commune", unit_up="all", **grouped), area="network",
          title_vi="Xã kết nối", title_en="Communes connected",
          citation={**PLAN, "section": "II.1", "quote": "100% các xã"},
          targets=[{"phase": "2021-2025", "deadline": "2025-12-31", "comparator": "=", "value": "100%"}])
    p.kpi("links_up", count(tags=["wan_link"]), area="network", unit="count",
          title_vi="Số đường truyền hoạt động", title_en="Links up",
          citation={**PLAN, "section": "II.2", "quote": "hai đường truyền"},
          targets=[{"phase": "2021-2025", "deadline": "2025-12-31", "comparator": ">=", "value": 2}])
    return p


@functools.cache
def bac_giang() -> Config:
    return load_config(BAC_GIANG, resolve_secrets=False).config


def _board(config_path: Path, name: str) -> dict[str, Any]:
    return dashboards(load_config(config_path, resolve_secrets=False).config)[name]


def test_committed_files_match_the_generator() -> None:
    for name, content in render_all(bac_giang()).items():
        path = GRAFANA / name
        assert path.exists(), f"{path} missing: run egov-agent dashboards --config {BAC_GIANG.relative_to(REPO)}"
        assert path.read_text(encoding="utf-8") == content, \
            f"{path} is stale: run egov-agent dashboards --config {BAC_GIANG.relative_to(REPO)}"


@pytest.mark.parametrize("name", sorted(p.name for p in GRAFANA.glob("*.json")))
def test_dashboard_is_well_formed(name: str) -> None:
    board = json.loads((GRAFANA / name).read_text(encoding="utf-8"))
    assert board["uid"] and board["schemaVersion"] >= 36 and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in board["templating"]["list"]}
    builtins = {"__rate_interval", "__interval", "__field", "__all"}
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        used = set(re.findall(r"\$\{?(\w+)", json.dumps(panel)))
        assert used <= variables | builtins, f"{panel['title']}: undefined variables {used - variables - builtins}"
        if panel["type"] in ("stat", "bargauge", "timeseries"):
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{name}: {panel['title']} has no unit"
    for title, expr in panel_queries(board):
        assert expr.count("(") == expr.count(")"), title
        # No province's numbers in a dashboard: targets and titles come from the series.
        assert not re.search(r"\b(230|22|10)\b", expr), f"{title}: a hard-coded count in {expr}"


def test_every_kpi_panel_shows_the_kpis_own_unit() -> None:
    """A count KPI 95 is never 9500%, a VND amount never a percentage: every query that selects KPIs by
    unit or by id is shown in the KPI's unit, and each unit of the configuration has its own table."""
    config = bac_giang()
    units = {k.id: k.unit for k in config.kpis}
    checked: set[str] = set()
    for name, board in dashboards(config).items():
        defaults = {v["name"]: v.get("current", {}).get("value") for v in board["templating"]["list"]}
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$kpi", str(defaults.get("kpi")))
                kpi_unit = kpi_unit_of_query(expr, units)
                if kpi_unit is None:
                    continue
                checked.add(kpi_unit)
                assert effective_unit(panel, target["refId"]) == GRAFANA_UNITS[kpi_unit], \
                    f"{name}: {panel['title']} {target['refId']} ({kpi_unit}): {expr}"
    assert checked == set(units.values()), f"units without a panel: {set(units.values()) - checked}"
    # The dashboards' KPI choices are the ratio KPIs their ratio panels can show.
    for name in ("egov-wan.json", "egov-videoconference.json"):
        kpi_var = next(v for v in dashboards(config)[name]["templating"]["list"] if v["name"] == "kpi")
        assert {units[o["value"]] for o in kpi_var["options"]} == {"ratio"}, name


def test_dashboards_open_on_a_meaningful_default() -> None:
    config = bac_giang()
    boards = dashboards(config)
    current = {name: {v["name"]: v["current"].get("value") for v in b["templating"]["list"]}
               for name, b in boards.items()}
    assert current["egov-wan.json"]["kpi"] == "wan_commune_coverage_2020"
    assert current["egov-videoconference.json"]["kpi"] == "vc_commune_endpoints_ready"
    assert all(c["province"] == "bg" for c in current.values())
    assert current["egov-wan.json"]["district"] == ["$__all"]


def test_a_province_without_districts_gets_no_district_variable_or_panel(tmp_path: Path) -> None:
    config_path = two_levels().write(tmp_path / "two-levels.yml")
    wan = _board(config_path, "egov-wan.json")
    text = json.dumps(wan, ensure_ascii=False)
    assert [v["name"] for v in wan["templating"]["list"]] == ["datasource", "province", "kpi"]
    assert "district" not in text and "Huyện" not in text
    assert not [p for p in wan["panels"] if p["type"] == "bargauge"], "a coverage-by-group panel without groups"
    kpi_var = wan["templating"]["list"][2]
    assert kpi_var["current"]["value"] == "communes"
    assert "egov-videoconference.json" not in dashboards(load_config(config_path, resolve_secrets=False).config)
    overview = _board(config_path, "egov-kpi-overview.json")
    tables = [p for p in overview["panels"] if p["type"] == "table"]
    assert [effective_unit(t, "B") for t in tables] == ["percentunit", "none"]


def test_the_district_variable_comes_from_the_configured_level(tmp_path: Path) -> None:
    """A province that calls its middle level «ward» gets a «ward» variable and panel, not «district»."""
    wan = _board(two_levels(middle="ward").write(tmp_path / "wards.yml"), "egov-wan.json")
    assert [v["name"] for v in wan["templating"]["list"]] == ["datasource", "province", "kpi", "ward"]
    assert "district" not in json.dumps(wan)
    (bars,) = [p for p in wan["panels"] if p["type"] == "bargauge"]
    assert 'group_level="ward"' in bars["targets"][0]["expr"] and "var-ward=" in json.dumps(bars)


def test_below_target_since_holds_through_a_gap_and_restarts_after_a_met_target(tmp_path: Path) -> None:
    """promtool runs the generated rules over an hour: 3/3 until 10m, 2/3 (short) from 10m, no data at all
    from 20m to 29m (longer than Prometheus's 5-minute lookback), 2/3 again, met at 35m, short again at 45m.
    The «since» stays 10m through the gap and becomes 45m after the met target, never the time of the gap's end."""
    loaded = load_config(two_levels().write(tmp_path / "province.yml"), resolve_secrets=False)
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(build_rules(loaded), allow_unicode=True, sort_keys=False), encoding="utf-8")
    numerator = ["2"] * 10 + ["1"] * 10 + ["_"] * 10 + ["1"] * 5 + ["2"] * 10 + ["1"] * 16
    denominator = [v if v == "_" else "2" for v in numerator]
    key = 'province="t2",kpi="communes"'
    since = "kpi:egov_kpi_below_target_since:timestamp"

    def at(minute: int, value: float | None) -> dict[str, Any]:
        samples = [] if value is None else [{"labels": f'{since}{{{key},origin="plan"}}', "value": value}]
        return {"expr": since, "eval_time": f"{minute}m", "exp_samples": samples}

    tests = {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": f"egov_kpi_numerator{{{key}}}", "values": " ".join(numerator)},
            {"series": f"egov_kpi_denominator{{{key}}}", "values": " ".join(denominator)},
            {"series": f'egov_kpi_target{{{key},phase="2021-2025",comparator="=",origin="plan",bound=""}}',
             "values": "1x60"},
        ],
        "promql_expr_test": [at(5, None), at(15, 600), at(27, None), at(32, 600), at(40, None), at(55, 2700)],
    }]}
    test_file = tmp_path / "since.test.yml"
    test_file.write_text(yaml.safe_dump(tests), encoding="utf-8")
    result = subprocess.run([promtool(), "test", "rules", str(test_file)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_command_writes_where_asked_and_never_into_the_installed_packages(tmp_path: Path) -> None:
    config_path = two_levels().write(tmp_path / "two-levels.yml")
    run = subprocess.run([*AGENT, "dashboards", "--config", str(config_path)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "dashboards" / "grafana" / "egov-wan.json").exists(), "default: under the current directory"
    assert (tmp_path / "dashboards" / "grafana" / "provisioning" / "dashboards" / "egov-agent.yml").exists()
    inside = Path(site.getsitepackages()[0]) / "egov-dashboards-test"
    refused = subprocess.run([*AGENT, "dashboards", "--config", str(config_path), "-o", str(inside)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "inside the installed packages" in refused.stderr, refused.stderr
    assert not inside.exists()
    bad = subprocess.run([*AGENT, "dashboards", "--config", str(tmp_path / "missing.yml")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "missing.yml" in bad.stderr


def test_every_panel_query_parses(tmp_path: Path) -> None:
    """promtool parses every query of every dashboard, the variables set to what each dashboard opens on
    (the end-to-end test also runs them against Prometheus with the demo's data)."""
    config_path = two_levels().write(tmp_path / "two-levels.yml")
    rules = []
    for config in (bac_giang(), load_config(config_path, resolve_secrets=False).config):
        for name, board in dashboards(config).items():
            for title, expr in panel_queries(board):
                rules.append({"record": f"dashboard:q{len(rules)}", "expr": substitute(expr, defaults(board)),
                              "labels": {"panel": f"{name}: {title}"[:200]}})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, allow_unicode=True),
                    encoding="utf-8")
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
