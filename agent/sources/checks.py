"""Cross-checks between ``sources:`` and the KPIs that read them, over the raw configuration data.

Like the other cross-checks in ``agent.config`` they tolerate wrong shapes (the schema reports
those), so a KPI naming a source or series that does not exist is listed in the same run as any
schema error. This module imports nothing heavy: ``agent.config`` calls it on every load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.domain.rawdata import as_mapping, mappings
from agent.sources import KINDS

Path_ = tuple[str | int, ...]
SOURCE_ONLY = ("series", "levels", "under", "group_by")


def _series_shapes(source: dict[str, Any]) -> dict[str, str]:
    series = as_mapping(source.get("series"))
    return {name: ("value" if isinstance(s, dict) and "value" in s else "ratio") for name, s in series.items()}


def check_sources(data: dict[str, Any], levels: list[str], unit_ids: set[Any],
                  bad: Callable[[Path_, str], None]) -> None:
    sources: dict[str, dict[str, Any]] = {}
    for i, source in mappings(data.get("sources")):
        here: Path_ = ("sources", i)
        kind = source.get("kind")
        if kind is None:
            bad(here, "a source needs kind: " + " | ".join(KINDS))
        elif kind not in KINDS:
            bad((*here, "kind"), f"unknown source kind {kind!r}; known: {sorted(KINDS)}")
        source_id = source.get("id")
        if isinstance(source_id, str):
            if source_id in sources or source_id == "manual":
                bad((*here, "id"), f"duplicate source id {source_id!r}" if source_id != "manual"
                    else "the source id manual is reserved for the manual data file")
            sources.setdefault(source_id, source)
        unit_map = source.get("unit_map")
        if isinstance(unit_map, dict):
            for code, unit in unit_map.items():
                if isinstance(unit, str) and unit not in unit_ids:
                    bad((*here, "unit_map", code), f"unknown unit {unit!r}")

    reporting = as_mapping(data.get("reporting"))
    periods = reporting.get("periods")
    served = periods if isinstance(periods, list) else ["month", "quarter", "year"]
    for i, source in mappings(data.get("sources")):
        _check_granularity(source, ("sources", i), reporting, served, bad)
    for i, kpi in mappings(data.get("kpis")):
        measure = kpi.get("measure")
        if not isinstance(measure, dict):
            continue
        if measure.get("kind") == "coverage" and isinstance(measure.get("source"), str):
            _check_flag_series(measure, ("kpis", i, "measure"), sources, bad)
            continue
        if measure.get("kind") not in ("ratio", "value"):
            continue
        here = ("kpis", i, "measure")
        source_id = measure.get("source", "manual")
        if source_id == "manual":
            if not data.get("manual"):
                bad((*here, "source"), "source is manual but the configuration has no manual: section")
            for key in SOURCE_ONLY:
                if key in measure:
                    bad((*here, key), "only a KPI read from a source (not manual) takes " + key)
            continue
        if not isinstance(source_id, str):
            continue
        read = sources.get(source_id)
        if read is None:
            known = ", ".join(sorted(sources)) or "none configured"
            bad((*here, "source"), f"unknown source {source_id!r} (sources: {known}; or manual)")
        else:
            shapes = _series_shapes(read)
            series = measure.get("series")
            if series is None:
                bad(here, f"a KPI read from source {source_id!r} needs series: one of {sorted(shapes)}")
            elif isinstance(series, str) and series not in shapes:
                bad((*here, "series"), f"source {source_id!r} has no series {series!r}; it has {sorted(shapes)}")
            elif isinstance(series, str) and shapes[series] != ("value" if measure["kind"] == "value" else "ratio"):
                wanted = "a value" if measure["kind"] == "value" else "numerator and denominator"
                bad((*here, "series"), f"a {measure['kind']} KPI needs a series with {wanted}; "
                                       f"{series!r} has {'a value' if shapes[series] == 'value' else 'a ratio'}")
        measure_levels = measure.get("levels")
        for j, level in enumerate(measure_levels if isinstance(measure_levels, list) else []):
            if isinstance(level, str) and level not in levels:
                bad((*here, "levels", j), f"unknown level {level!r}")
        if isinstance(measure.get("under"), str) and measure["under"] not in unit_ids:
            bad((*here, "under"), f"unknown unit {measure['under']!r}")
        if isinstance(measure.get("group_by"), str) and measure.get("kind") == "value":
            bad((*here, "group_by"), "group_by applies to ratio KPIs")  # its level is checked in agent.config
        period = measure.get("period", "year")
        if isinstance(period, str) and period in ("month", "quarter", "year") and period not in served:
            bad((*here, "period"), f"the {period} period is not among reporting.periods {served}")


_BOUNDARY_KEYS = {"month": "month_start_day", "quarter": "quarter_start_day", "year": "year_start_day"}


def _check_granularity(source: dict[str, Any], here: Path_, reporting: dict[str, Any], served: list[Any],
                       bad: Callable[[Path_, str], None]) -> None:
    """Monthly figures add up to a period only if it begins on the 1st (59/KH-UBND's quarters begin on the 10th)."""
    if source.get("granularity") != "monthly" or source.get("approximate_periods") is True:
        return
    uncut = []
    for kind in served:
        key = _BOUNDARY_KEYS.get(kind) if isinstance(kind, str) else None
        day = reporting.get(key, 1) if key else 1
        if isinstance(day, int) and day != 1:
            uncut.append(f"the {kind} (it begins on day {day})")
    if uncut:
        bad((*here, "granularity"),
            f"monthly figures cannot be cut at the boundaries of {' and '.join(uncut)}: serve daily or per-event "
            f"figures (granularity: daily or event), or set approximate_periods: true to accept each month in "
            f"the period holding most of its days, shown as approximate")


def _check_flag_series(measure: dict[str, Any], here: Path_, sources: dict[str, dict[str, Any]],
                       bad: Callable[[Path_, str], None]) -> None:
    """A coverage read from a source counts units by a yes/no value each unit reports."""
    source_id = measure["source"]
    source = sources.get(source_id)
    if source is None:
        known = ", ".join(sorted(sources)) or "none configured"
        bad((*here, "source"), f"unknown source {source_id!r} (sources: {known})")
        return
    shapes = _series_shapes(source)
    series = measure.get("series")
    if isinstance(series, str) and series not in shapes:
        bad((*here, "series"), f"source {source_id!r} has no series {series!r}; it has {sorted(shapes)}")
    elif isinstance(series, str) and shapes[series] != "value":
        bad((*here, "series"), f"a coverage read from a source needs a yes/no value per unit (value: 1 or 0); "
                               f"{series!r} has a numerator and denominator")
