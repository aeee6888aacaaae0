"""Sources of application KPIs (from_system): HTTP JSON APIs, SQL databases, dropped report files.

A source is fetched on its own schedule (``runner.SourceRunner``), once per reporting period it
serves, and yields per-unit records of named *series* (numerator and denominator, or a value).
A ``ratio`` or ``value`` KPI names ``source:`` and ``series:``, and optionally the unit levels it
covers; ``evaluate`` sums the records into the KPI per period.

The kind modules import heavy libraries (SQLAlchemy, httpx, openpyxl), so they are loaded only
when a configuration has sources; this package itself imports nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

KINDS = {"http_json": "agent.sources.http_json", "sql": "agent.sources.sql", "file_drop": "agent.sources.file_drop"}
# A kind whose settings live apart from its fetching code, so that validating them imports less.
SPECS = {"sql": "agent.sources.sqlspec"}


def source_class(kind: str) -> Any:
    """The class implementing a source kind (``KeyError`` for an unknown kind)."""
    return importlib.import_module(KINDS[kind]).SOURCE


def spec_class(kind: str) -> Any:
    """The settings model of a source kind (``KeyError`` for an unknown kind); the kind's libraries need not load."""
    if kind in SPECS:
        return importlib.import_module(SPECS[kind]).SPEC
    return source_class(kind).Spec
