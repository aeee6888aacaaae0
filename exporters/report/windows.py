"""Report windows: the plan's own periods, named as people name them.

``2026-Q4`` is the fourth reporting quarter of 2026 by the province's calendar (Bắc Giang:
10/09/2026 to 09/12/2026, 59/KH-UBND §4.1), ``2026`` the year, ``2026-H1`` the first two quarters,
``previous`` the last quarter that has ended (what the scheduled report writes on the 10th), and
``--from/--to`` any range of days. Windows are half-open ranges of days in the province's time
zone; a window that has not ended yet is reported "to date".
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from agent.domain.periods import Period, ReportingSpec, add_months, period_containing, today_in


class WindowError(ValueError):
    """A period the command line names that cannot be read."""


@dataclass(frozen=True)
class Window:
    kind: str  # quarter | year | half | custom
    name: str  # 2026-Q4, 2026, 2026-H1, 2026-09-01..2026-09-30
    start: dt.date
    end: dt.date  # exclusive
    number: int = 0  # quarter or half number
    quarters: tuple[Period, ...] = ()  # the reporting quarters a half is made of

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def bounds(self, timezone: str) -> tuple[float, float]:
        tz = ZoneInfo(timezone)
        return (dt.datetime.combine(self.start, dt.time(), tz).timestamp(),
                dt.datetime.combine(self.end, dt.time(), tz).timestamp())

    def evaluated_at(self, timezone: str, now: float | None = None) -> tuple[float, bool]:
        """The instant the figures are read at (the cut-off, or now), and whether the window is complete."""
        now = time.time() if now is None else now
        end = self.bounds(timezone)[1]
        return (min(end, now), now >= end)


def _quarter(year: int, number: int, spec: ReportingSpec) -> Period:
    for month_offset in range(-3, 15):
        day = add_months(dt.date(year, 1, 15), month_offset)
        period = period_containing("quarter", day, spec)
        if period.name == f"{year}-Q{number}":
            return period
    raise WindowError(f"no quarter {year}-Q{number} in this province's calendar")


def _from_period(period: Period, kind: str | None = None) -> Window:
    return Window(kind or period.kind, period.name, period.start, period.end, period.number)


def parse(text: str, spec: ReportingSpec, timezone: str, now: float | None = None) -> Window:
    """``2026-Q4``, ``2026``, ``2026-H1``/``H2`` or ``previous``."""
    text = text.strip()
    if text == "previous":
        current = period_containing("quarter", today_in(timezone, now), spec)
        return _from_period(period_containing("quarter", current.start - dt.timedelta(days=1), spec))
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
        return _from_period(_quarter(int(m.group(1)), int(m.group(2)), spec))
    if m := re.fullmatch(r"(\d{4})-H([12])", text):
        year, half = int(m.group(1)), int(m.group(2))
        first, second = _quarter(year, 2 * half - 1, spec), _quarter(year, 2 * half, spec)
        return Window("half", text, first.start, second.end, half, (first, second))
    if re.fullmatch(r"\d{4}", text):
        period = period_containing("year", dt.date(int(text), 7, 1), spec)
        return _from_period(period)
    raise WindowError(f"unknown period {text!r}: expected 2026-Q4, 2026, 2026-H1, previous, or --from/--to")


def custom(start: str, end: str) -> Window:
    """Days ``start`` to ``end`` included."""
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        raise WindowError(f"--from/--to: expected dates as YYYY-MM-DD, got {start!r} and {end!r}") from None
    if last < first:
        raise WindowError(f"--to {end} is before --from {start}")
    return Window("custom", f"{first.isoformat()}..{last.isoformat()}", first, last + dt.timedelta(days=1))


def previous(window: Window, spec: ReportingSpec) -> Window:
    """The window before: the quarter, half or year before; a range of the same length before."""
    if window.kind == "quarter":
        return _from_period(period_containing("quarter", window.start - dt.timedelta(days=1), spec))
    if window.kind == "year":
        return _from_period(period_containing("year", window.start - dt.timedelta(days=1), spec))
    if window.kind == "half":
        year = int(window.name[:4])
        return parse(f"{year}-H1" if window.number == 2 else f"{year - 1}-H2", spec, "UTC")
    length = window.end - window.start
    return Window("custom", "", window.start - length, window.start)


def history(window: Window, spec: ReportingSpec, count: int) -> list[Window]:
    """``count`` windows ending with this one, oldest first (the trend charts)."""
    out = [window]
    while len(out) < count:
        out.insert(0, previous(out[0], spec))
    return out
