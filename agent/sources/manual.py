"""Manual KPI values (surveys, tax and training statistics) imported from a CSV or YAML file.

Each row carries the KPI id, the value (or numerator and denominator), the date the figure refers
to (``2026-06-30`` or, as Excel writes it on a vi-VN machine, ``30/06/2026``: see agent.dates) and
its source, so the dashboard can say "92% — Cục Thuế report, 2026-06-30". A malformed row, or one
dated after today, is reported with its file and row number and skipped; the other rows are kept.
The file is re-read only when it changes, streamed and never beyond its size cap.

Nothing already known is lost to a bad file: one that cannot be read, is over the cap, has no rows
of figures (a header only) or was rewritten while it was read keeps every value it had; a KPI
whose rows in the file now are all bad or missing (a half-written file) keeps its last good value,
with a warning, until a good row for it comes back.

A row marked as an example (``note`` «example» / «ví dụ», or a true ``example`` column) shows
the file's form, never a figure: it is kept apart, so its KPI shows "example data only" instead of
being judged met on invented numbers. A real row always wins over an example row.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.domain.dates import parse_day, refuse_future
from agent.domain.periods import today_in
from agent.domain.steadyfile import DEFAULT_MAX_BYTES, FileChanged, FileTooLarge, stamp, steady_binary, steady_text

log = logging.getLogger(__name__)
FIELDS = ("kpi", "date", "source", "value", "numerator", "denominator")
EXTRA_FIELDS = ("note", "example")
EXAMPLE_NOTES = ("example", "ví dụ")
TRUE_WORDS = ("true", "yes", "1", "x", "có")
LOGGED_ROWS = 20  # rows logged one by one per read; the rest are counted (a broken 20 MB file would flood the log)
KEPT_PROBLEMS = 1000


@dataclass(frozen=True)
class ManualValue:
    kpi: str
    date: dt.date
    source: str
    value: float
    numerator: float | None
    denominator: float | None
    example: bool = False


def _number(raw: object, name: str) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = str(raw).strip()
    try:
        number = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {text!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {text!r}")
    return number


def parse_row(row: dict[str, object], today: dt.date | None = None) -> ManualValue:
    unknown = sorted(set(row) - set(FIELDS) - set(EXTRA_FIELDS))
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}")
    kpi = str(row.get("kpi") or "").strip()
    if not kpi:
        raise ValueError("kpi: missing")
    date, _ = parse_day(row.get("date"), "date")
    if today is not None:
        refuse_future(date, today, "date", row.get("date"))
    source = str(row.get("source") or "").strip()
    if not source:
        raise ValueError("source: missing (say where the figure comes from)")
    value = _number(row.get("value"), "value")
    numerator = _number(row.get("numerator"), "numerator")
    denominator = _number(row.get("denominator"), "denominator")
    if (numerator is None) != (denominator is None):
        raise ValueError("numerator and denominator go together")
    if numerator is not None and denominator is not None:  # both or neither, as checked above
        if denominator <= 0:
            raise ValueError("denominator: must be positive")
        ratio = numerator / denominator
        if value is not None and abs(value - ratio) > 1e-6 * max(1.0, abs(ratio)):
            raise ValueError(f"value {value:g} disagrees with numerator/denominator {ratio:g}")
        value = ratio
    if value is None:
        raise ValueError("value: missing (give value, or numerator and denominator)")
    return ManualValue(kpi, date, source, value, numerator, denominator, is_example(row))


def is_example(row: dict[str, object]) -> bool:
    """A row that shows the form of the file, not a figure."""
    note = str(row.get("note") or "").strip().casefold()
    flag = row.get("example")
    flagged = flag is True or str(flag if flag is not None else "").strip().casefold() in TRUE_WORDS
    return note in EXAMPLE_NOTES or flagged


class ManualData:
    """The newest value per KPI from one file, reloaded when it changes; never loses a value to a bad file."""

    def __init__(self, path: Path, timezone: str = "UTC", max_bytes: int = DEFAULT_MAX_BYTES,
                 previous: ManualData | None = None) -> None:
        self.path = path
        self.timezone = timezone
        self.max_bytes = max_bytes
        self._stamp: tuple[int, ...] | None = None
        self._read_on: dt.date | None = None  # a row refused as future may be due on a later day
        self._future_rows = False
        self.values: dict[str, ManualValue] = {}
        self.examples: dict[str, ManualValue] = {}  # KPIs that have example rows only
        self.problems: list[str] = []  # the last read's refused rows, "file:row 7: reason" (at most KEPT_PROBLEMS)
        self.rejected_rows = 0  # all of them, counted
        self.kept: dict[str, str] = {}  # KPI -> why its value is an earlier read's
        self.loaded_ok = False
        self.reads = 0
        self.errors: Counter[str] = Counter()  # failed reads by reason
        self.last_error = ""
        self.last_success = 0.0
        if previous is not None and previous.path == path:
            # A reload builds everything anew: the values read so far are this file's last good ones, even
            # if the file is bad at the moment of the reload.
            self.values, self.examples = dict(previous.values), dict(previous.examples)

    def refresh(self, now: float | None = None) -> None:
        today = today_in(self.timezone, now)
        try:
            status = self.path.stat()
        except OSError as exc:
            if self.loaded_ok or self._stamp is None:
                self._fail("missing", f"cannot read: {exc.strerror} (keeping {len(self.values)} values)")
            self._stamp = (-1,)
            return
        if stamp(status) == self._stamp and not (self._future_rows and today != self._read_on):
            return
        self.reads += 1
        try:
            values, examples, problems, rejected, future = self._read(today)
        except FileChanged as exc:  # read again at the next refresh: the stamp is not taken
            self._fail("changed", f"{exc}; keeping the previous values, reading it again next time")
            return
        except FileTooLarge as exc:
            self._stamp = stamp(status)
            self._fail("too_large", f"{exc}; keeping the previous values")
            return
        except (OSError, UnicodeDecodeError, yaml.YAMLError, csv.Error, ValueError) as exc:
            if _moved(self.path, status):  # the read broke because the file changed under it
                self._fail("changed", "changed while it was read; keeping the previous values, reading it "
                                      "again next time")
                return
            self._stamp = stamp(status)
            self._fail("unreadable", f"unreadable, keeping the previous values: {exc}")
            return
        self._stamp, self._read_on, self._future_rows = stamp(status), today, future
        for problem in problems[:LOGGED_ROWS]:
            log.warning("manual data row skipped: %s", problem)
        if rejected > LOGGED_ROWS:
            log.warning("manual data %s: %d more rows skipped (%d in all)", self.path, rejected - LOGGED_ROWS,
                        rejected)
        self.problems, self.rejected_rows = problems, rejected
        if not values and not examples and rejected == 0:
            self._fail("empty", "no rows of figures (a header only?); keeping the previous values")
            return
        kept = {}
        for kpi, item in self.values.items():
            if kpi not in values:
                values[kpi] = item
                kept[kpi] = (f"no good row for it in the file now; keeping its last good value "
                             f"({item.date.isoformat()}, {item.source})")
                log.warning("manual data %s: KPI %s: %s", self.path, kpi, kept[kpi])
        examples = {kpi: item for kpi, item in examples.items() if kpi not in values}
        self.values, self.examples, self.kept = values, examples, kept
        self.loaded_ok, self.last_error, self.last_success = True, "", time.time()

    def _fail(self, reason: str, message: str) -> None:
        log.error("manual data %s: %s", self.path, message)
        self.loaded_ok, self.last_error = False, reason
        self.errors[reason] += 1

    def _read(self, today: dt.date):
        """(values, examples, problems, rejected count, any row refused as future), streaming the rows."""
        values: dict[str, ManualValue] = {}
        examples: dict[str, ManualValue] = {}
        problems: list[str] = []
        rejected, future = 0, False
        for where, row in self._rows():
            try:
                item = parse_row(row, today)
            except ValueError as exc:
                rejected += 1
                future = future or "after today" in str(exc)
                if len(problems) < KEPT_PROBLEMS:
                    problems.append(f"{self.path}:{where}: {exc}")
                continue
            chosen = examples if item.example else values
            if item.kpi not in chosen or item.date >= chosen[item.kpi].date:
                chosen[item.kpi] = item
        return values, examples, problems, rejected, future

    def _rows(self):
        if self.path.suffix.lower() in (".yml", ".yaml"):
            with steady_binary(self.path, self.max_bytes) as raw:
                data = yaml.safe_load(raw) or []
            yield from _yaml_rows(data)
            return
        with steady_text(self.path, self.max_bytes) as stream:
            reader = csv.DictReader(stream)
            missing = {"kpi", "date", "source"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"the header lacks the column(s) {', '.join(sorted(missing))}")
            for row in reader:
                yield f"row {reader.line_num}", {k: v for k, v in row.items() if k is not None}


def _moved(path: Path, status) -> bool:
    try:
        return stamp(path.stat()) != stamp(status)
    except OSError:
        return True


def _yaml_rows(data: Any):
    if isinstance(data, dict):
        data = data.get("values", [])
    if not isinstance(data, list):
        raise ValueError("expected a list of rows (or a mapping with values:)")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            yield f"values[{i}]", {"kpi": None}
        else:
            yield f"values[{i}]", {str(k): v for k, v in row.items()}
