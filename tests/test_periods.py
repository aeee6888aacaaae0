"""Reporting periods: calendar defaults and Bắc Giang's 10th-to-9th quarters (59/KH-UBND §II.4)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.province import write_config

from agent.config.loading import load_config
from agent.config.yamlsource import ConfigError
from agent.domain.periods import ReportingSpec, current_periods, period_containing

BG = ReportingSpec(quarter_start_month=12, quarter_start_day=10)
D = dt.date.fromisoformat


@pytest.mark.parametrize(("day", "start", "end", "number", "name"), [
    ("2027-01-05", "2026-12-10", "2027-03-10", 1, "2027-Q1"),  # year rollover: Q1 began in December
    ("2026-12-10", "2026-12-10", "2027-03-10", 1, "2027-Q1"),
    ("2026-12-09", "2026-09-10", "2026-12-10", 4, "2026-Q4"),
    ("2027-03-09", "2026-12-10", "2027-03-10", 1, "2027-Q1"),  # 9 March is still Q1
    ("2027-03-10", "2027-03-10", "2027-06-10", 2, "2027-Q2"),  # 10 March opens Q2
    ("2027-06-09", "2027-03-10", "2027-06-10", 2, "2027-Q2"),
    ("2027-06-10", "2027-06-10", "2027-09-10", 3, "2027-Q3"),
    ("2027-09-10", "2027-09-10", "2027-12-10", 4, "2027-Q4"),
    ("2028-02-29", "2027-12-10", "2028-03-10", 1, "2028-Q1"),  # leap day
])
def test_bac_giang_quarters_run_from_the_10th_to_the_9th(day, start, end, number, name) -> None:
    quarter = period_containing("quarter", D(day), BG)
    assert (quarter.start, quarter.end, quarter.number, quarter.name) == (D(start), D(end), number, name)
    assert quarter.last_day == D(end) - dt.timedelta(days=1)


def test_the_year_is_the_calendar_year_even_with_10th_to_9th_quarters() -> None:
    """«Đến năm 2020» ends on 31 December: 10 December belongs to the year it falls in, not to the next."""
    year = period_containing("year", D("2027-01-05"), BG)
    assert (year.start, year.end, year.name) == (D("2027-01-01"), D("2028-01-01"), "2027")
    assert period_containing("year", D("2026-12-10"), BG).start == D("2026-01-01")
    assert period_containing("year", D("2026-12-31"), BG).end == D("2027-01-01")
    # A province that reports on another year says so.
    shifted = ReportingSpec(quarter_start_month=12, quarter_start_day=10, year_start_month=12, year_start_day=10)
    assert period_containing("year", D("2026-12-10"), shifted).start == D("2026-12-10")
    # Months stay calendar months unless month_start_day says otherwise.
    month = period_containing("month", D("2027-01-05"), BG)
    assert (month.start, month.end, month.name) == (D("2027-01-01"), D("2027-02-01"), "2027-01")


def test_calendar_defaults_and_a_shifted_month() -> None:
    calendar = ReportingSpec()
    assert period_containing("quarter", D("2026-11-25"), calendar).start == D("2026-10-01")
    assert period_containing("quarter", D("2026-11-25"), calendar).number == 4
    assert period_containing("year", D("2026-11-25"), calendar).start == D("2026-01-01")
    shifted = ReportingSpec(month_start_day=10)
    month = period_containing("month", D("2027-01-05"), shifted)
    assert (month.start, month.end, month.name) == (D("2026-12-10"), D("2027-01-10"), "2026-12")


def test_bounds_follow_the_province_time_zone() -> None:
    # 2027-03-09 17:30 UTC is already 00:30 on 10 March in Hà Nội: Q2 has begun there.
    now = dt.datetime(2027, 3, 9, 17, 30, tzinfo=dt.UTC).timestamp()
    assert current_periods(BG, "Asia/Ho_Chi_Minh", now)["quarter"].start == D("2027-03-10")
    assert current_periods(BG, "UTC", now)["quarter"].start == D("2026-12-10")
    quarter = current_periods(BG, "Asia/Ho_Chi_Minh", now)["quarter"]
    assert quarter.start_timestamp("Asia/Ho_Chi_Minh") == dt.datetime(2027, 3, 9, 17, 0, tzinfo=dt.UTC).timestamp()


def test_reporting_settings_are_validated_with_their_location(tmp_path: Path) -> None:
    # YAML text, not support.province: the errors quote their lines (p.yml:6, p.yml:7).
    path = write_config(tmp_path / "p.yml", """\
        province: {code: t, name_vi: T, name_en: T}
        levels: [province]
        units: [{id: p, name_vi: P, level: province}]
        reporting:
          quarter_start_month: 12
          quarter_start_day: 31
          periods: [month, week]
        """)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "p.yml:6: reporting.quarter_start_day: Input should be less than or equal to 28" in text
    assert "p.yml:7: reporting.periods[1]:" in text
