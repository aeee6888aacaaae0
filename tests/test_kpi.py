"""The KPI engine: target phases by date, comparators, coverage by level, manual data and staleness."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.province import Province, availability, count, coverage, ops_target

from agent.config.loading import load_config
from agent.config.schema import KpiTarget
from agent.engine.kpi import KpiEngine, active_target, deadline_timestamp, is_met, today_in
from agent.engine.store import Store
from agent.engine.units import UnitIndex
from agent.sources.manual import ManualData
from collectors.api import ProbeResult


def target(**kw) -> KpiTarget:
    return KpiTarget.model_validate({"phase": "p", "deadline": "2020-12-31", **kw})


def test_active_target_follows_the_calendar() -> None:
    phases = [target(phase="2019-2020", deadline="2020-12-31", comparator=">=", value="20%"),
              target(phase="2021-2025", deadline="2025-12-31", comparator=">=", value="50%")]
    assert active_target(phases, dt.date(2019, 6, 1)).phase == "2019-2020"
    assert active_target(phases, dt.date(2020, 12, 31)).phase == "2019-2020"
    assert active_target(phases, dt.date(2021, 1, 1)).phase == "2021-2025"
    assert active_target(phases, dt.date(2030, 1, 1)).phase == "2021-2025"  # overdue: the last one stays
    assert active_target([], dt.date(2020, 1, 1)) is None


def test_today_is_taken_in_the_province_time_zone() -> None:
    # 2020-12-31 18:30 UTC is already 2021-01-01 01:30 in Hà Nội.
    instant = dt.datetime(2020, 12, 31, 18, 30, tzinfo=dt.UTC).timestamp()
    assert today_in("Asia/Ho_Chi_Minh", instant) == dt.date(2021, 1, 1)
    assert today_in("UTC", instant) == dt.date(2020, 12, 31)
    end = deadline_timestamp(target(comparator=">=", value=1), "Asia/Ho_Chi_Minh")
    assert end == dt.datetime(2020, 12, 31, 17, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(("kw", "value", "met"), [
    ({"comparator": ">=", "value": "90%"}, 0.9, True),
    ({"comparator": ">=", "value": "90%"}, 0.8999, False),
    ({"comparator": ">", "value": "90%"}, 0.9, False),
    ({"comparator": ">", "value": "90%"}, 0.9001, True),
    ({"comparator": "=", "value": "100%"}, 1.0, True),
    ({"comparator": "=", "value": "100%"}, 0.99, False),
    ({"comparator": "<=", "value": 5}, 5, True),
    ({"comparator": "<", "value": 5}, 5, False),
    ({"comparator": "approx", "value": "55%"}, 0.56, True),
    ({"comparator": "approx", "value": "55%"}, 0.54, False),
    ({"comparator": "range", "low": "30%", "high": "50%"}, 0.4, True),
    ({"comparator": "range", "low": "30%", "high": "50%"}, 0.6, False),
    ({"comparator": "qualitative", "text": "hầu hết"}, 0.99, None),
])
def test_comparators(kw: dict, value: float, met: bool | None) -> None:
    assert is_met(target(**kw), value) is met


def province(kpis: bool = True) -> Province:
    """Districts d1 (communes c1, c2) and d2 (c3, c4); WAN links at d1, c1 (two), c2 and c3, none at c4."""
    p = Province(code="t", levels=["province", "district", "commune"])
    p.unit("d1", level="district").each_unit(["c1", "c2"], parent="d1")
    p.unit("d2", level="district").each_unit(["c3", "c4"], parent="d2")
    p.collector("tcp", interval="10s", timeout="2s")
    for target_id in ("d1-link", "c1-a", "c1-b", "c2-a", "c3-a"):
        p.target(target_id, unit=target_id.split("-")[0], collector="tcp", tags=["wan"],
                 params={"host": "127.0.0.1", "port": 1})
    if not kpis:
        return p
    p.section("manual", {"file": "manual.csv", "stale_after": "30d"})
    p.kpi("communes_any", coverage(tags=["wan"], level="commune", group_by="district"),
          targets=[ops_target("100%", "=", deadline="2030-01-01", phase="x")])
    p.kpi("communes_all", coverage(tags=["wan"], level="commune", unit_up="all"))
    p.kpi("districts", coverage(tags=["wan"], level="district"))
    p.kpi("targets_up", count(tags=["wan"], under="d1"))
    p.kpi("availability", availability(tags=["wan"], window="1h"))
    p.kpi("survey", {"kind": "ratio"}, kpi_class="manual")
    p.kpi("output", {"kind": "value"}, kpi_class="manual", unit="vnd")
    return p


def engine_for(tmp_path: Path, manual_csv: str = "kpi,date,source,value\n"):
    (tmp_path / "manual.csv").write_text(manual_csv, encoding="utf-8")
    loaded = load_config(province().write(tmp_path / "c.yml"))
    config = loaded.config
    units = UnitIndex(config)
    return KpiEngine(config, units, ManualData(loaded.resolve_path("manual.csv"))), Store()


def by_id(evaluations):
    return {ev.kpi.id: ev for ev in evaluations}


def test_coverage_counts_units_at_the_level_not_their_descendants(tmp_path: Path) -> None:
    engine, store = engine_for(tmp_path)
    # Only the communes' own targets count (the district router is not a commune's link).
    assert by_id(engine.evaluate({}))["communes_any"].pending == "4 of 4 targets not probed yet"
    up = {"d1-link": True, "c1-a": False, "c1-b": True, "c2-a": True, "c3-a": False}
    for target_id, ok in up.items():
        store.record(target_id, "tcp", ProbeResult(ok, "" if ok else "refused"), 0.01)
    ev = by_id(engine.evaluate(store.snapshot()[0]))
    # c1 (one of two links up), c2 up, c3 down, c4 has no link at all: 2 of 4 communes.
    assert (ev["communes_any"].numerator, ev["communes_any"].denominator) == (2, 4)
    assert ev["communes_any"].met is False
    assert [(g.group, g.numerator, g.denominator) for g in ev["communes_any"].groups] == [
        ("d1", 2, 2), ("d2", 0, 2)]
    assert (ev["communes_all"].numerator, ev["communes_all"].denominator) == (1, 4)
    # The district level sees only the district's own link, not its communes'.
    assert (ev["districts"].numerator, ev["districts"].denominator) == (1, 2)
    assert ev["targets_up"].value == 3  # d1-link, c1-b, c2-a under d1
    assert ev["availability"].value == pytest.approx(3 / 5)


def test_select_is_found_once_and_gives_what_a_scan_gives(tmp_path: Path) -> None:
    engine, _ = engine_for(tmp_path)
    for kpi in engine.config.kpis:
        selector = getattr(kpi.measure, "select", None)
        if selector is None:
            continue
        scanned = [t for t in engine.config.targets
                   if (selector.collector is None or t.collector == selector.collector)
                   and all(tag in t.tags for tag in selector.tags)
                   and (selector.under is None or engine.units.is_under(t.unit, selector.under))]
        first = engine.select(selector)
        first.clear()  # a caller's list is its own: the next one is whole again
        assert engine.select(selector) == scanned, kpi.id
    assert [t.id for t in engine.select(by_id(engine.evaluate({}))["targets_up"].kpi.measure.select)] == [
        "d1-link", "c1-a", "c1-b", "c2-a"]


def test_members_are_observed_only_when_a_kpi_has_members(tmp_path: Path) -> None:
    from agent.engine.member_clock import MemberClock

    engine, _ = engine_for(tmp_path)
    assert not engine.observes_members  # no clock
    engine.clock = MemberClock()
    assert engine.observes_members  # communes_any, communes_all, districts
    (tmp_path / "none").mkdir()
    loaded = load_config(province(kpis=False).write(tmp_path / "none" / "c.yml"))
    bare = KpiEngine(loaded.config, UnitIndex(loaded.config), None, clock=MemberClock())
    assert not bare.observes_members


def test_availability_uses_the_window(tmp_path: Path) -> None:
    engine, store = engine_for(tmp_path)
    t0 = 1_700_000_000.0
    for i in range(120):  # two hours of one probe a minute: down in the first hour, up in the second
        ok = i >= 60
        for target_id in ("d1-link", "c1-a", "c1-b", "c2-a", "c3-a"):
            store.record(target_id, "tcp", ProbeResult(ok, "" if ok else "timeout"), 0.01, finished_at=t0 + 60 * i)
    ev = by_id(engine.evaluate(store.snapshot()[0], now=t0 + 60 * 119))["availability"]
    assert ev.value is not None and ev.value > 0.95  # the down hour lies (almost) wholly outside the window


def test_manual_values_newest_row_wins_bad_rows_are_skipped_and_old_ones_are_stale(tmp_path: Path) -> None:
    today = dt.date.today()
    csv = (
        "kpi,date,source,value,numerator,denominator\n"
        f"survey,{today - dt.timedelta(days=400)},old survey,50%,,\n"
        f"survey,{today - dt.timedelta(days=3)},new survey,,80,100\n"
        f"survey,2025-02-30,bad date,10%,,\n"
        f"output,{today - dt.timedelta(days=90)},statistics office,4.85e13,,\n"
        f"output,{today},,1,,\n"
        f"survey,{today},mismatch,50%,1,4\n"
    )
    engine, _ = engine_for(tmp_path, csv)
    ev = by_id(engine.evaluate({}))
    assert ev["survey"].value == pytest.approx(0.8) and ev["survey"].source == "new survey"
    assert (ev["survey"].numerator, ev["survey"].denominator) == (80, 100)
    assert ev["survey"].stale is False
    assert ev["output"].value == 4.85e13 and ev["output"].stale is True  # 90 days > stale_after 30d
    problems = engine.manual.problems
    assert any("row 4: date: '2025-02-30' is not a date of the calendar" in p for p in problems)
    assert any("row 6: source: missing" in p for p in problems)
    assert any("row 7: value 0.5 disagrees with numerator/denominator 0.25" in p for p in problems)
    assert all(str(tmp_path / "manual.csv") in p for p in problems)


def test_manual_file_that_breaks_keeps_the_last_good_values(tmp_path: Path) -> None:
    engine, _ = engine_for(tmp_path, f"kpi,date,source,value\nsurvey,{dt.date.today()},s,70%\n")
    assert by_id(engine.evaluate({}))["survey"].value == pytest.approx(0.7)
    path = tmp_path / "manual.csv"
    path.write_text("not,the,right,header\n1,2,3,4\n")
    import os
    os.utime(path, (1, 1))  # a different mtime, so the agent re-reads it
    assert by_id(engine.evaluate({}))["survey"].value == pytest.approx(0.7)
    assert engine.manual.loaded_ok is False
    path.unlink()
    assert by_id(engine.evaluate({}))["survey"].value == pytest.approx(0.7)


def test_manual_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "manual.yml").write_text(
        "values:\n  - {kpi: survey, date: 2026-01-05, source: SIPAS, value: 91%}\n  - just a string\n",
        encoding="utf-8")
    data = ManualData(tmp_path / "manual.yml")
    data.refresh()
    assert data.values["survey"].value == pytest.approx(0.91)
    assert data.values["survey"].date == dt.date(2026, 1, 5)
    assert len(data.problems) == 1 and "values[1]: kpi: missing" in data.problems[0]


def test_unit_index_labels_every_level(tmp_path: Path) -> None:
    loaded = load_config(province(kpis=False).write(tmp_path / "c.yml"))
    units = UnitIndex(loaded.config)
    assert units.hierarchy_values("c3") == ("p", "d2", "c3")
    assert units.hierarchy_values("d1") == ("p", "d1", "")
    assert units.at_level("commune", under="d2") == ["c3", "c4"]
