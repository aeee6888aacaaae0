"""Reading the generated dashboards as Grafana does: which unit a query's values show in, what the
dashboard opens on, and its queries with the variables filled in (test_dashboards, test_e2e_prometheus)."""

from __future__ import annotations

import re
from typing import Any


def effective_unit(panel: dict[str, Any], ref: str) -> str:
    """The unit Grafana shows query ``ref``'s values in: its table column's override, else the panel's."""
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    renames = {}
    for step in panel.get("transformations", []):
        renames.update(step.get("options", {}).get("renameByName", {}))
    column = renames.get(f"Value #{ref}", f"Value #{ref}")
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"] == {"id": "byName", "options": column}:
            unit = next((p["value"] for p in override["properties"] if p["id"] == "unit"), unit)
    return unit


KPI_VALUED = re.compile(r"\b(kpi:egov_kpi_value:province|kpi:egov_kpi_target:max|kpi:egov_kpi_shortfall:abs|"
                        r"kpi_group:egov_kpi_group_value:ratio)\b")


def kpi_unit_of_query(expr: str, units: dict[str, str]) -> str | None:
    """The KPI unit a query's values are in, when the query selects KPIs by unit or by one KPI id."""
    if not KPI_VALUED.search(expr) or re.search(r"\b(count|sum)\(", expr):
        return None
    by_unit = re.search(r'unit="(\w+)"', expr)
    if by_unit:
        return by_unit.group(1)
    by_id = re.search(r'kpi="([\w$]+)"', expr)
    return units.get(by_id.group(1)) if by_id else None


def defaults(board: dict[str, Any]) -> dict[str, str]:
    """What the dashboard opens on: each variable's current value (All is every value)."""
    out = {"__rate_interval": "30s"}
    for variable in board["templating"]["list"]:
        value = variable.get("current", {}).get("value")
        out[variable["name"]] = ".*" if value in (None, ["$__all"], "$__all") else str(value)
    return out


def substitute(expr: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), expr)
