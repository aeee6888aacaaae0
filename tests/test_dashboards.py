"""Grafana dashboards: the committed JSON is what the generator writes, and each dashboard is well formed."""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO

from exporters.grafana import DASHBOARDS, panel_queries, render_all

GRAFANA = REPO / "dashboards" / "grafana"


def test_committed_files_match_the_generator() -> None:
    for name, content in render_all().items():
        path = GRAFANA / name
        assert path.exists(), f"{path} missing: run egov-agent dashboards"
        assert path.read_text(encoding="utf-8") == content, f"{path} is stale: run egov-agent dashboards"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_is_well_formed(name: str) -> None:
    board = json.loads((GRAFANA / name).read_text(encoding="utf-8"))
    assert board["uid"] and board["schemaVersion"] >= 36 and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in board["templating"]["list"]}
    builtins = {"__rate_interval", "__interval", "__field"}
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        used = set(re.findall(r"\$\{?(\w+)", json.dumps(panel)))
        assert used <= variables | builtins, f"{panel['title']}: undefined variables {used - variables - builtins}"
    for title, expr in panel_queries(board):
        assert expr.count("(") == expr.count(")"), title
        # No province's numbers in a dashboard: targets and titles come from the series.
        assert not re.search(r"\b(230|22|10)\b", expr), f"{title}: a hard-coded count in {expr}"
