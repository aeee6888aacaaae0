"""Reporting periods: the current month, quarter and year, with the province's own boundaries.

Plans report on their own calendars: Bắc Giang's 59/KH-UBND counts quarters from the 10th to the
9th (Q1 = 10 December of the previous year to 9 March), so «quý I» is not January–March. A period
is a half-open range of days ``[start, end)`` in the province's time zone; the year is the four
quarters from Q1's start, so "year to date" follows the same calendar as the quarterly reports.
Application KPIs are computed per period from their sources (``agent/sources``) and exported as
``egov_kpi_period_*`` series labelled with the period's first day.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from collectors.base import StrictModel

PeriodKind = Literal["month", "quarter", "year"]
PERIOD_KINDS: tuple[PeriodKind, ...] = ("month", "quarter", "year")
_MONTHS = {"month": 1, "quarter": 3, "year": 12}


class ReportingSpec(StrictModel):
    """Where periods begin. The defaults are calendar months, quarters and years.

    Bắc Giang (59/KH-UBND §II.4): ``quarter_start_month: 12, quarter_start_day: 10`` makes Q1 run
    from 10 December of the previous year to 9 March, Q2 10/3–9/6, Q3 10/6–9/9, Q4 10/9–9/12.
    Days stop at 28 so that every month has the boundary day.
    """

    month_start_day: int = Field(1, ge=1, le=28, description="Day of the month on which a month begins")
    quarter_start_month: int = Field(1, ge=1, le=12, description="Month in which Q1 begins (12: December "
                                                                 "of the previous year)")
    quarter_start_day: int = Field(1, ge=1, le=28, description="Day of that month on which Q1 begins")
    periods: list[PeriodKind] = Field(default_factory=lambda: list(PERIOD_KINDS),
                                      description="Which periods sources fetch and the agent exports")


@dataclass(frozen=True)
class Period:
    kind: str
    start: dt.date
    end: dt.date  # exclusive: the next period's first day
    number: int = 0  # a quarter's number (1–4) counted from the reporting year's start

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    @property
    def name(self) -> str:
        """Named after where most of its days lie: 10/12/2026–9/3/2027 is «2027-Q1»."""
        middle = self.start + (self.end - self.start) / 2
        if self.kind == "month":
            return f"{middle.year}-{middle.month:02d}"
        if self.kind == "year":
            return str(middle.year)
        return f"{middle.year}-Q{self.number}"

    def contains(self, day: dt.date) -> bool:
        return self.start <= day < self.end

    def start_timestamp(self, timezone: str) -> float:
        return dt.datetime.combine(self.start, dt.time(), ZoneInfo(timezone)).timestamp()

    def end_timestamp(self, timezone: str) -> float:
        return dt.datetime.combine(self.end, dt.time(), ZoneInfo(timezone)).timestamp()


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months; boundary days are at most 28, so the day always exists."""
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)


def _latest_boundary(day: dt.date, first_month: int, boundary_day: int, step: int) -> dt.date:
    """The latest date ``<= day`` of the form (year, first_month + k·step, boundary_day)."""
    candidate = dt.date(day.year + 1, first_month, boundary_day)
    while candidate > day:
        candidate = add_months(candidate, -step)
    return candidate


def period_containing(kind: str, day: dt.date, spec: ReportingSpec) -> Period:
    if kind == "month":
        start = _latest_boundary(day, 1, spec.month_start_day, 1)
        return Period("month", start, add_months(start, 1))
    if kind not in ("quarter", "year"):
        raise ValueError(f"unknown period {kind!r}; expected one of {PERIOD_KINDS}")
    step = _MONTHS[kind]
    start = _latest_boundary(day, spec.quarter_start_month, spec.quarter_start_day, step)
    number = ((start.month - spec.quarter_start_month) % 12) // 3 + 1 if kind == "quarter" else 0
    return Period(kind, start, add_months(start, step), number)


def today_in(timezone: str, now: float | None = None) -> dt.date:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(timezone)).date()


def current_periods(spec: ReportingSpec, timezone: str, now: float | None = None,
                    kinds: list[str] | None = None) -> dict[str, Period]:
    """The periods containing today in the province's time zone."""
    today = today_in(timezone, now)
    return {kind: period_containing(kind, today, spec) for kind in (kinds or spec.periods)}


@dataclass(frozen=True)
class PeriodValue:
    """A KPI within one reporting period (exported as ``egov_kpi_period_*``)."""

    period: Period
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
