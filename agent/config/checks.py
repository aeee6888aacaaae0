"""Cross-checks no single model can make: ids unique across files, units and levels that exist, inventories
that name real units, a KPI's class matching its measure.

They read the raw data with its YAML marks, so each problem points at the line to fix, even when the
models themselves failed to validate.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent.config.schema import RESERVED_LABELS
from agent.config.yamlsource import Document, Path_, Problem, format_path
from agent.domain.rawdata import as_mapping, mappings
from agent.sources.checks import check_sources
from collectors import REGISTRY


def _walk_units(units: Any, path: Path_):
    for i, unit in mappings(units):
        here = (*path, i)
        yield unit, here
        yield from _walk_units(unit.get("children"), (*here, "children"))


def _duplicates(items: list[tuple[Any, Path_]], what: str, doc: Document) -> list[Problem]:
    counts = Counter(key for key, _ in items)
    problems = []
    for key, path in items:
        if isinstance(key, str) and counts[key] > 1:
            file, line = doc.locate((*path, "id"))
            problems.append(Problem(file, line, format_path((*path, "id")), f"duplicate {what} id {key!r}"))
    return problems


def cross_check(data: dict[str, Any], doc: Document) -> list[Problem]:
    problems: list[Problem] = []

    def bad(path: Path_, message: str) -> None:
        file, line = doc.locate(path)
        problems.append(Problem(file, line, format_path(path), message))

    levels = [lv for lv in data.get("levels") or [] if isinstance(lv, str)] if isinstance(data.get("levels"), list) \
        else []
    for i, level in enumerate(levels):
        if level in RESERVED_LABELS:
            bad(("levels", i), f"level name {level!r} is reserved for a label the agent sets")
    if len(set(levels)) != len(levels):
        bad(("levels",), "level names must be unique")

    units = list(_walk_units(data.get("units"), ("units",)))
    problems += _duplicates([(u.get("id"), p) for u, p in units], "unit", doc)
    unit_ids = {u.get("id") for u, _ in units}
    for unit, path in units:
        if isinstance(unit.get("level"), str) and levels and unit["level"] not in levels:
            bad((*path, "level"), f"unknown level {unit['level']!r}; levels are {levels}")

    collectors = as_mapping(data.get("collectors"))
    for name in collectors:
        if name not in REGISTRY:
            bad(("collectors", name), f"unknown collector {name!r}; known: {sorted(REGISTRY)}")

    targets = mappings(data.get("targets"))
    problems += _duplicates([(t.get("id"), ("targets", i)) for i, t in targets], "target", doc)
    for i, target in targets:
        if isinstance(target.get("unit"), str) and target["unit"] not in unit_ids:
            bad(("targets", i, "unit"), f"unknown unit {target['unit']!r}")
        if isinstance(target.get("collector"), str) and target["collector"] not in collectors:
            bad(("targets", i, "collector"), f"collector {target['collector']!r} is not configured under collectors")

    unit_levels = {u.get("id"): u.get("level") for u, _ in units}
    inventories = _check_inventories(data, levels, unit_levels, units, bad, doc)
    problems += _duplicates([(inv.get("id"), ("inventories", i)) for i, inv in mappings(data.get("inventories"))],
                            "inventory", doc)

    kpis = mappings(data.get("kpis"))
    problems += _duplicates([(k.get("id"), ("kpis", i)) for i, k in kpis], "KPI", doc)
    for i, kpi in kpis:
        here = ("kpis", i)
        measure = as_mapping(kpi.get("measure"))
        if isinstance(measure.get("inventory"), str) and measure["inventory"] not in inventories:
            known = ", ".join(sorted(inventories)) or "none declared"
            bad((*here, "measure", "inventory"), f"unknown inventory {measure['inventory']!r} (inventories: {known})")
        _check_class(kpi, measure, here, bad)
        select = as_mapping(measure.get("select"))
        where = (*here, "measure", "select")
        if isinstance(select.get("collector"), str) and select["collector"] not in collectors:
            bad((*where, "collector"), f"collector {select['collector']!r} is not configured under collectors")
        if isinstance(select.get("level"), str) and select["level"] not in levels:
            bad((*where, "level"), f"unknown level {select['level']!r}")
        if isinstance(select.get("under"), str) and select["under"] not in unit_ids:
            bad((*where, "under"), f"unknown unit {select['under']!r}")
        if isinstance(measure.get("group_by"), str) and measure["group_by"] not in levels:
            bad((*here, "measure", "group_by"), f"unknown level {measure['group_by']!r}")
        targets_of_kpi = mappings(kpi.get("targets"))
        if any(t.get("origin", "plan") == "plan" for _, t in targets_of_kpi) and not kpi.get("citation"):
            bad(here, "a KPI with plan targets needs a citation")
    check_sources(data, levels, unit_ids, bad)
    return problems


def _check_inventories(data: dict[str, Any], levels: list[str], unit_levels: dict[Any, Any],
                       units: list[tuple[dict[str, Any], Path_]], bad, doc: Document) -> set[str]:
    """References of each inventory, and its size against the plan's own count (``expected``)."""
    parents: dict[Any, Any] = {}
    for unit, _ in units:
        for child in unit.get("children") or []:
            if isinstance(child, dict):
                parents[child.get("id")] = unit.get("id")

    def is_under(uid: Any, ancestor: Any) -> bool:
        seen = 0
        while uid is not None and seen < 100:
            if uid == ancestor:
                return True
            uid, seen = parents.get(uid), seen + 1
        return False

    ids: set[str] = set()
    for i, inv in mappings(data.get("inventories")):
        here: Path_ = ("inventories", i)
        if isinstance(inv.get("id"), str):
            ids.add(inv["id"])
        inv_levels = [lv for lv in inv.get("levels") or [] if isinstance(lv, str)] \
            if isinstance(inv.get("levels"), list) else []
        for j, level in enumerate(inv_levels):
            if level not in levels:
                bad((*here, "levels", j), f"unknown level {level!r}; levels are {levels}")
        under = inv.get("under")
        if isinstance(under, str) and under not in unit_levels:
            bad((*here, "under"), f"unknown unit {under!r}")
        listed = [u for u in inv.get("units") or [] if isinstance(u, str)] if isinstance(inv.get("units"), list) \
            else []
        for j, uid in enumerate(listed):
            if uid not in unit_levels:
                bad((*here, "units", j), f"unknown unit {uid!r}")
        members = {uid for uid, level in unit_levels.items()
                   if level in inv_levels and (not isinstance(under, str) or is_under(uid, under))}
        members |= {uid for uid in listed if uid in unit_levels}
        for j, exclusion in mappings(inv.get("exclude")):
            excluded = exclusion.get("unit")
            if isinstance(excluded, str) and excluded not in members:
                bad((*here, "exclude", j, "unit"), f"unit {excluded!r} is not a member of this inventory")
            members.discard(excluded)
        expected = inv.get("expected")
        if isinstance(expected, int) and not isinstance(expected, bool) and len(members) != expected:
            bad((*here, "expected"), f"the inventory has {len(members)} units, the plan counts {expected}: "
                                     f"add or exclude units (with the plan's reason) until they agree")
    return ids


_CLASS_WORDS = {"direct": "probes infrastructure", "from_system": "reads an application system",
                "manual": "imports figures a person supplies"}


def _check_class(kpi: dict[str, Any], measure: dict[str, Any], here: Path_, bad) -> None:
    """The KPI's declared class says where its numbers come from: the measure must agree."""
    kpi_class = kpi.get("class")
    kind = measure.get("kind")
    if kpi_class not in _CLASS_WORDS or not isinstance(kind, str):
        return
    if kind in ("ratio", "value"):
        source = measure.get("source", "manual")
        actual = "manual" if source == "manual" else "from_system"
    elif kind == "coverage" and measure.get("source") is not None:
        actual = "from_system"
    else:
        actual = "direct"
    if actual != kpi_class:
        reads = {"manual": "the manual data file (source: manual)", "from_system": f"source {measure.get('source')!r}",
                 "direct": f"probes ({kind} of targets)"}[actual]
        bad((*here, "class"), f"class {kpi_class} {_CLASS_WORDS[kpi_class]}, but the measure reads {reads}: "
                              f"make the class {actual} or change the measure")
