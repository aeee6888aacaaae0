"""Dates as the province's staff type them and as Excel writes them, read one way only.

ISO (``2026-12-31``) and the Vietnamese order, day first (``31/12/2026``, ``1/2/2026``, also with
``-`` or ``.``), which is what Excel writes into a CSV on a machine set to vi-VN (its short date is
``dd/MM/yyyy``, with `` 0:00`` or `` 00:00:00`` after it for a date-and-time cell). ``01/02/2026`` is
always the 1st of February, never the US 2nd of January: a file from a machine set to en-US must be
saved with ISO dates. A two-digit year (``31/12/26``) and a bare number (an Excel serial, 46387) are
refused rather than guessed. A month (``2026-12``, ``12/2026``) is told apart for the sources that
take monthly figures.

A date after today (in the province's time zone) is refused: a mistyped year would otherwise be the
newest figure for ever and hide every later correction.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_DAY_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_ISO_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_MONTH_YEAR = re.compile(r"^(\d{1,2})[/.-](\d{4})$")
_SHORT_YEAR = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2}$")
ACCEPTED = "2026-12-31 or 31/12/2026 (day first)"
ACCEPTED_MONTHS = "2026-12-31, 31/12/2026 (day first), 2026-12 or 12/2026"


def parse_day(raw: Any, column: str, months: bool = False) -> tuple[dt.date, bool]:
    """(the date, True if only a month was given); a month is accepted only with ``months``.

    A month stands for its first day. Errors name the column and quote the text."""
    if isinstance(raw, dt.datetime):
        return raw.date(), False
    if isinstance(raw, dt.date):
        return raw, False
    text = str(raw).strip() if raw is not None else ""
    expected = ACCEPTED_MONTHS if months else ACCEPTED
    try:
        if found := _ISO_DAY.match(text):
            return dt.date(int(found[1]), int(found[2]), int(found[3])), False
        if found := _DAY_FIRST.match(text):
            return dt.date(int(found[3]), int(found[2]), int(found[1])), False
        month = _ISO_MONTH.match(text) or _MONTH_YEAR.match(text)
        if month and months:
            year, number = (month[1], month[2]) if month.re is _ISO_MONTH else (month[2], month[1])
            return dt.date(int(year), int(number), 1), True
    except ValueError:
        raise ValueError(f"{column}: {text!r} is not a date of the calendar (expected {expected})") from None
    if _SHORT_YEAR.match(text):
        raise ValueError(f"{column}: {text!r} has a two-digit year; write the year in full ({expected})")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f"{column}: {text!r} is a number, not a date (an Excel date cell saved as a number? "
                         f"format the column as a date: {expected})")
    if month and not months:
        raise ValueError(f"{column}: {text!r} is a month; give the day ({expected})")
    if not text:
        raise ValueError(f"{column}: missing (expected {expected})")
    raise ValueError(f"{column}: expected {expected}, got {text!r}")


def refuse_future(day: dt.date, today: dt.date, column: str, raw: Any) -> None:
    """A figure cannot refer to a day that has not come yet (in the province's time zone)."""
    if day > today:
        shown = raw.isoformat() if isinstance(raw, dt.date) else str(raw).strip()
        raise ValueError(f"{column}: {shown!r} is after today ({today.isoformat()}); a figure cannot refer to a "
                         f"day that has not come (a mistyped year?)")
