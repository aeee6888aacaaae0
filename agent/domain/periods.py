"""Reporting periods: the current month, quarter and year, with the province's own boundaries.

Plans report on their own calendars: Bắc Giang's 59/KH-UBND counts quarters from the 10th to the
9th (Q1 = 10 December of the previous year to 9 March), so «quý I» is not January–March. A period
is a half-open range of days ``[start, end)`` in the province's time zone. The year is the
calendar year unless configured otherwise: «đến năm 2020» means 31 December 2020, not the end of
the fourth reporting quarter (9 December). Application KPIs are computed per period from their
sources (``agent/sources``) and exported as ``egov_kpi_period_*`` series labelled with the
period's first day.

A source declares the granularity of its data. Daily and per-event data can be cut at any day;
monthly figures cannot be cut at the 10th, so a monthly source against 10th-to-9th quarters is a
configuration error unless the operator accepts approximate periods (a month then counts in the
period holding most of its days, and every surface says "approximate").
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from agent.domain.models import Share, StrictModel

PeriodKind = Literal["month", "quarter", "year"]
PERIOD_KINDS: tuple[PeriodKind, ...] = ("month", "quarter", "year")


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
    year_start_month: int = Field(1, ge=1, le=12, description="Month in which the year begins (1: calendar year)")
    year_start_day: int = Field(1, ge=1, le=28, description="Day of that month on which the year begins")
    periods: list[PeriodKind] = Field(default_factory=lambda: list(PERIOD_KINDS),
                                      description="Which periods sources fetch and the agent exports")
    connected_min_up: Share = Field(0.95, description="Period form of coverage KPIs: a unit counts as connected "
                                                      "in a period when its link was up at least this share of it "
                                                      "(an ops threshold: the plans set none)")

    def boundary_day(self, kind: str) -> int:
        """The day of the month on which periods of this kind begin."""
        return {"month": self.month_start_day, "quarter": self.quarter_start_day,
                "year": self.year_start_day}[kind]


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
    if kind == "year":
        start = _latest_boundary(day, spec.year_start_month, spec.year_start_day, 12)
        return Period("year", start, add_months(start, 12))
    if kind != "quarter":
        raise ValueError(f"unknown period {kind!r}; expected one of {PERIOD_KINDS}")
    start = _latest_boundary(day, spec.quarter_start_month, spec.quarter_start_day, 3)
    number = ((start.month - spec.quarter_start_month) % 12) // 3 + 1
    return Period(kind, start, add_months(start, 3), number)


def cuts_months(spec: ReportingSpec, kind: str) -> bool:
    """Whether periods of ``kind`` begin on the 1st, so that monthly figures add up to them exactly."""
    return spec.boundary_day(kind) == 1


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
    approximate: bool = False  # monthly figures in a period that does not begin on the 1st
