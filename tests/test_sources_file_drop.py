"""file_drop sources: monthly CSV and Excel reports, malformed rows reported with file and row."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from conftest import sample
from openpyxl import Workbook
from sources_util import exposition, fetch, kpi, province

from agent.config import load_config
from agent.periods import ReportingSpec, current_periods

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
