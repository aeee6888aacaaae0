"""file_drop sources: monthly CSV and Excel reports, malformed rows reported with file and row."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from openpyxl import Workbook
from support.exposition import sample
from support.sources import exposition, fetch, kpi, province

from agent.config.loading import load_config
from agent.domain.periods import ReportingSpec, current_periods

BG = ReportingSpec(quarter_start_month=12, quarter_start_day=10)
SOURCE = """\
  - id: reports
    kind: file_drop
    granularity: monthly
    approximate_periods: true
    folder: reports
    columns: {unit: ma_don_vi, date: ky_bao_cao}
    interval: 1h
    series:
      work_files: {numerator: xu_ly_tren_mang, denominator: tong_so}
"""
KPIS = (kpi("work_files_all", "{kind: ratio, source: reports, series: work_files}")
        + kpi("work_files_commune", "{kind: ratio, source: reports, series: work_files, levels: [commune], "
              "period: month}"))
HEADER = "ma_don_vi,ky_bao_cao,xu_ly_tren_mang,tong_so\n"


def this_month() -> str:
    return current_periods(BG, "Asia/Ho_Chi_Minh")["month"].start.strftime("%Y-%m")


@pytest.fixture
def drops(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    month = this_month()
    # Departments report in CSV; row 3 has text where a number belongs, row 4 an unknown unit.
    (folder / "so-nganh.csv").write_text(
        HEADER + f"s1,{month},80,100\nd1,{month},không rõ,50\nxx9,{month},1,2\np,{month},8,10\n", encoding="utf-8")
    # Communes report in Excel (made with openpyxl): numbers as cells, a date cell, a blank line.
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["ma_don_vi", "ky_bao_cao", "xu_ly_tren_mang", "tong_so"])
    sheet.append(["c1", dt.datetime.strptime(month, "%Y-%m"), 30, 60])
    sheet.append([None, None, None, None])
    sheet.append(["c2", month, 12, 40])
    sheet.append(["c3", month, 50, 40])  # more online than in all: malformed
    workbook.save(folder / "huyen-xa.xlsx")
    return folder


def test_malformed_rows_are_reported_and_the_rest_is_counted(tmp_path: Path, drops: Path, caplog) -> None:
    samples = exposition(province(tmp_path, SOURCE, KPIS))
    # Kept: s1 80/100, p 8/10, c1 30/60, c2 12/40.
    assert sample(samples, "egov_kpi_numerator", kpi="work_files_all") == 80 + 8 + 30 + 12
    assert sample(samples, "egov_kpi_denominator", kpi="work_files_all") == 100 + 10 + 60 + 40
    assert sample(samples, "egov_kpi_value", kpi="work_files_commune") == pytest.approx(42 / 100)
    assert sample(samples, "egov_source_skipped_rows", source="reports") == 3
    assert sample(samples, "egov_source_up", source="reports") == 1
    log = caplog.text
    assert "so-nganh.csv: row 3: xu_ly_tren_mang: expected a number, got 'không rõ'" in log
    assert "so-nganh.csv: row 4: ma_don_vi: unknown unit 'xx9'" in log
    assert "huyen-xa.xlsx: row 5: xu_ly_tren_mang (50) exceeds tong_so (40)" in log


def test_files_are_reread_only_when_they_change(tmp_path: Path, drops: Path) -> None:
    loaded = load_config(province(tmp_path, SOURCE, KPIS))
    runner = fetch(loaded)
    source = runner.states["reports"].source
    parsed = dict(source._files)
    month = this_month()
    # A corrected report replaces the old one; a new unit's file appears; another file is removed.
    time.sleep(0.01)
    (drops / "so-nganh.csv").write_text(HEADER + f"s1,{month},90,100\nd1,{month},40,50\n", encoding="utf-8")
    (drops / "huyen-xa.xlsx").unlink()
    (drops / "notes.txt").write_text("not a report")

    import asyncio
    asyncio.run(runner.fetch("reports"))
    asyncio.run(runner.close())
    _, snapshot = runner.snapshot("reports")
    records = snapshot.data["work_files"]["month"][1]
    assert sorted((r.unit, r.numerator, r.denominator) for r in records) == [("d1", 40, 50), ("s1", 90, 100)]
    assert snapshot.problems == ()
    assert parsed[drops / "so-nganh.csv"] is not source._files[drops / "so-nganh.csv"]


def test_the_newest_report_of_a_unit_and_date_wins(tmp_path: Path, drops: Path) -> None:
    month = this_month()
    late = drops / "so-nganh-dieu-chinh.csv"
    late.write_text(HEADER + f"s1,{month},95,100\n", encoding="utf-8")
    future = time.time() + 5
    os.utime(late, (future, future))
    runner = fetch(load_config(province(tmp_path, SOURCE, KPIS)))
    _, snapshot = runner.snapshot("reports")
    s1 = [r for r in snapshot.data["work_files"]["month"][1] if r.unit == "s1"]
    assert [(r.numerator, r.denominator) for r in s1] == [(95, 100)]


def test_a_file_lacking_a_column_is_skipped_whole(tmp_path: Path, drops: Path) -> None:
    (drops / "cu.csv").write_text("ma_don_vi,thang,xu_ly_tren_mang\ns1,2026-01,5\n", encoding="utf-8")
    runner = fetch(load_config(province(tmp_path, SOURCE, KPIS)))
    _, snapshot = runner.snapshot("reports")
    assert "cu.csv: the header lacks the column(s) ky_bao_cao, tong_so; file skipped" in snapshot.problems


def test_a_missing_folder_is_a_labelled_error(tmp_path: Path) -> None:
    runner = fetch(load_config(province(tmp_path, SOURCE, KPIS)))
    assert dict(runner.states["reports"].errors) == {"file": 1}


# --- nothing counted is lost to a bad file; dates as typed; size cap; files replaced mid-read ------------

def month_records(runner, series: str = "work_files") -> dict[str, tuple[float, float]]:
    _, snapshot = runner.snapshot("reports")
    return {r.unit: (r.numerator, r.denominator) for r in snapshot.data[series]["month"][1]}


def refetch(runner) -> None:
    import asyncio

    async def once() -> None:
        await runner.fetch("reports")
    asyncio.run(once())


def rewrite(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stamp = path.stat().st_mtime + 1
    os.utime(path, (stamp, stamp))


@pytest.mark.parametrize(("name", "bad"), [
    ("header only", HEADER),
    ("half-written: cut inside the second row", HEADER + "s1,{month},90,100\nd1,{mo"),
    ("every row malformed", HEADER + "s1,{month},nhiều,100\nd1,{month},40,ít\n"),
    ("empty", ""),
])
def test_a_bad_new_version_keeps_the_rows_of_the_units_it_lost(tmp_path: Path, drops: Path, caplog, name: str,
                                                             bad: str) -> None:
    month = this_month()
    path = drops / "so-nganh.csv"
    rewrite(path, HEADER + f"s1,{month},80,100\nd1,{month},30,50\n")
    runner = fetch(load_config(province(tmp_path, SOURCE, KPIS)))
    assert {u: month_records(runner)[u] for u in ("s1", "d1")} == {"s1": (80, 100), "d1": (30, 50)}
    rewrite(path, bad.replace("{month}", month))
    refetch(runner)
    records = month_records(runner)
    if name.startswith("half"):  # s1's new row is whole and taken; d1's is cut, and d1 keeps its last rows
        assert (records["s1"], records["d1"]) == ((90, 100), (30, 50))
    else:
        assert (records["s1"], records["d1"]) == ((80, 100), (30, 50))
    _, snapshot = runner.snapshot("reports")
    assert any("so-nganh.csv: no good row now for unit(s) " in p and "their rows from the file's last version are "
               "kept" in p for p in snapshot.problems)
    assert runner.states["reports"].up


@pytest.mark.parametrize("typed", [
    "{d:02d}/{m:02d}/{y}",  # vi-VN: dd/MM/yyyy
    "{d}/{m}/{y} 0:00",     # a date-and-time cell as Excel writes it
    "{d}-{m}-{y}",
    "{m:02d}/{y}",          # a month, in a monthly report
])
def test_dates_are_read_day_first(tmp_path: Path, typed: str) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    day = current_periods(BG, "Asia/Ho_Chi_Minh")["month"].start
    text = typed.format(d=day.day, m=day.month, y=day.year)
    (folder / "bao-cao.csv").write_text(HEADER + f"s1,{text},7,10\n", encoding="utf-8")
    runner = fetch(load_config(province(tmp_path, SOURCE, KPIS)))
    assert month_records(runner) == {"s1": (7, 10)}
    assert runner.snapshot("reports")[1].problems == ()


def test_dates_in_the_us_order_are_refused_not_guessed(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "bao-cao.csv").write_text(HEADER + "s1,12/31/2025,7,10\ns1,31/12/25,7,10\n", encoding="utf-8")
    runner = fetch(load_config(province(tmp_path, SOURCE, KPIS)))
    problems = runner.snapshot("reports")[1].problems
    assert problems[0].startswith("bao-cao.csv: row 2: ky_bao_cao: '12/31/2025' is not a date of the calendar")
    assert problems[1].startswith("bao-cao.csv: row 3: ky_bao_cao: '31/12/25' has a two-digit year")


def test_a_row_dated_after_today_is_refused_with_file_row_and_date(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    month = this_month()
    next_year = dt.date.today().year + 1
    (folder / "so-nganh.csv").write_text(HEADER + f"s1,{month},80,100\nd1,15/01/{next_year},1,2\n", encoding="utf-8")
    runner = fetch(load_config(province(tmp_path, SOURCE, KPIS)))
    assert month_records(runner) == {"s1": (80, 100)}
    assert (f"so-nganh.csv: row 3: ky_bao_cao: '15/01/{next_year}' is after today ({dt.date.today().isoformat()}"
            in caplog.text or f"'15/01/{next_year}' is after today" in caplog.text)
    _, snapshot = runner.snapshot("reports")
    assert any(p.startswith("so-nganh.csv: row 3: ky_bao_cao: ") and "is after today" in p for p in snapshot.problems)


def test_a_file_over_the_size_cap_is_refused_and_its_last_rows_kept(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    month = this_month()
    path = folder / "so-nganh.csv"
    path.write_text(HEADER + f"s1,{month},80,100\n", encoding="utf-8")
    capped = SOURCE.replace("    interval: 1h\n", "    interval: 1h\n    max_file_size: 2kB\n")
    runner = fetch(load_config(province(tmp_path, capped, KPIS)))
    assert month_records(runner) == {"s1": (80, 100)}
    day = dt.date.today()
    filler = "".join(f"d1,{(day - dt.timedelta(days=400 + i)).isoformat()},1,2\n" for i in range(200))
    rewrite(path, HEADER + f"s1,{month},10,100\n" + filler)
    assert path.stat().st_size > 2000
    refetch(runner)
    assert month_records(runner) == {"s1": (80, 100)}
    assert "so-nganh.csv is " in caplog.text and "over the size cap (2000 bytes); not read" in caplog.text


def long_report(first: int, last: int, rows: int = 15_000) -> str:
    """c1 first and c3 last this month, many old rows between: half of one version and half of another mix them."""
    month = this_month()
    day = dt.date.today().replace(day=1)
    filler = "".join(f"s1,{(day - dt.timedelta(days=40 + i)).isoformat()},1,2\n" for i in range(rows))
    return HEADER + f"c1,{month},{first},100\n" + filler + f"c3,{month},{last},100\n"


@pytest.mark.parametrize("how", ["in place", "renamed over"])
def test_a_file_replaced_while_it_is_read_is_not_half_taken(tmp_path: Path, how: str) -> None:
    from support.sources import MidRead
    folder = tmp_path / "reports"
    folder.mkdir()
    path = folder / "xa.csv"
    path.write_text(long_report(10, 10), encoding="utf-8")
    runner = fetch(load_config(province(tmp_path, SOURCE, KPIS)))
    assert {u: month_records(runner)[u] for u in ("c1", "c3")} == {"c1": (10, 100), "c3": (10, 100)}
    rewrite(path, long_report(20, 20))
    with MidRead(path, long_report(30, 30), how) as mid:
        refetch(runner)
    assert mid.done, f"the file was never caught in the middle of a read ({mid.report})"
    records = month_records(runner)
    assert (records["c1"], records["c3"]) == ((10, 100), (10, 100))  # the last good version, not a mix
    _, snapshot = runner.snapshot("reports")
    assert any(p.startswith("xa.csv: was ") and "while it was read; its last version is kept" in p
               for p in snapshot.problems)
    refetch(runner)  # read again, whole
    records = month_records(runner)
    assert (records["c1"], records["c3"]) == ((30, 100), (30, 100))
