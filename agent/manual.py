"""Manual KPI values (surveys, tax and training statistics) imported from a CSV or YAML file.

Each row carries the KPI id, the value (or numerator and denominator), the date the figure refers
to and its source, so the dashboard can say "92% — Cục Thuế report, 2026-06-30". A malformed row
is reported with its file and row number and skipped; the other rows are kept. The file is re-read
only when it changes.

A row marked as an example (``note`` «example» / «ví dụ», or a true ``example`` column) shows
the file's form, never a figure: it is kept apart, so its KPI shows "example data only" instead of
being judged met on invented numbers. A real row always wins over an example row.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

log = logging.getLogger(__name__)
FIELDS = ("kpi", "date", "source", "value", "numerator", "denominator")
EXTRA_FIELDS = ("note", "example")
EXAMPLE_NOTES = ("example", "ví dụ")
TRUE_WORDS = ("true", "yes", "1", "x", "có")


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


def parse_row(row: dict[str, object]) -> ManualValue:
    unknown = sorted(set(row) - set(FIELDS) - set(EXTRA_FIELDS))
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}")
    kpi = str(row.get("kpi") or "").strip()
    if not kpi:
        raise ValueError("kpi: missing")
    raw_date = str(row.get("date") or "").strip()
    try:
        date = dt.date.fromisoformat(raw_date)
    except ValueError:
        raise ValueError(f"date: expected YYYY-MM-DD, got {raw_date!r}") from None
    source = str(row.get("source") or "").strip()
    if not source:
        raise ValueError("source: missing (say where the figure comes from)")
    value = _number(row.get("value"), "value")
    numerator = _number(row.get("numerator"), "numerator")
    denominator = _number(row.get("denominator"), "denominator")
    if (numerator is None) != (denominator is None):
        raise ValueError("numerator and denominator go together")
    if denominator is not None:
        if denominator <= 0:
            raise ValueError("denominator: must be positive")
        ratio = numerator / denominator  # type: ignore[operator]
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
    """The newest value per KPI from one file, reloaded when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self.values: dict[str, ManualValue] = {}
        self.examples: dict[str, ManualValue] = {}  # KPIs that have example rows only
        self.problems: list[str] = []
        self.loaded_ok = False

    def refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            if self.loaded_ok or self._mtime is None:
                log.error("manual data %s: cannot read: %s (keeping %d values)", self.path,
                          exc.strerror, len(self.values))
            self.loaded_ok = False
            self._mtime = -1.0
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            rows = list(self._rows())
        except (OSError, UnicodeDecodeError, yaml.YAMLError, csv.Error, ValueError) as exc:
            log.error("manual data %s: unreadable, keeping the previous values: %s", self.path, exc)
            self.loaded_ok = False
            return
        values: dict[str, ManualValue] = {}
        examples: dict[str, ManualValue] = {}
        problems = []
        for where, row in rows:
            try:
                item = parse_row(row)
            except ValueError as exc:
                problems.append(f"{self.path}:{where}: {exc}")
                continue
            chosen = examples if item.example else values
            if item.kpi not in chosen or item.date >= chosen[item.kpi].date:
                chosen[item.kpi] = item
        for problem in problems:
            log.warning("manual data row skipped: %s", problem)
        examples = {kpi: item for kpi, item in examples.items() if kpi not in values}
        self.values, self.examples, self.problems, self.loaded_ok = values, examples, problems, True

    def _rows(self):
        text = self.path.read_text(encoding="utf-8-sig")
        if self.path.suffix.lower() in (".yml", ".yaml"):
            data = yaml.safe_load(text) or []
            if isinstance(data, dict):
                data = data.get("values", [])
            if not isinstance(data, list):
                raise ValueError("expected a list of rows (or a mapping with values:)")
            for i, row in enumerate(data):
                if not isinstance(row, dict):
                    yield f"values[{i}]", {"kpi": None}
                else:
                    yield f"values[{i}]", {str(k): v for k, v in row.items()}
            return
        reader = csv.DictReader(text.splitlines())
        missing = {"kpi", "date", "source"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"the header lacks the column(s) {', '.join(sorted(missing))}")
        for row in reader:
            yield f"row {reader.line_num}", {k: v for k, v in row.items() if k is not None}
