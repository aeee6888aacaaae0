"""Monthly reports dropped into a folder by units, as CSV or Excel (xlsx) files.

Each row is one unit's figures for one reporting date: a unit code column, a date column
(``2026-09-30``, ``2026-09``, ``30/09/2026`` or ``09/2026``; an Excel date cell), and one column per
number the series map. A row is counted in every period containing its date. A month (``2026-09``)
is accepted only from a source declared ``granularity: monthly``; it counts on its first day, or,
in a period that does not begin on the 1st (accepted with ``approximate_periods``), in the period
holding most of the month. Rows marked as examples (the template's sample rows) are kept apart and
never counted as figures. People type these
files, so a malformed row (text in a number column, an unknown unit, a date that is not one,
numerator above denominator) is reported with its file and row and skipped, and the rest of the
file is kept; a file whose header lacks a mapped column is reported and skipped whole. A unit's
figures for one date given twice are counted once: the newest file wins.

Files are parsed again only when their size or modification time changes, on the runner's thread
pool (openpyxl and large CSVs block).
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from openpyxl import load_workbook
from pydantic import Field

from agent.manual import is_example
from agent.periods import Period
from agent.sources.base import FetchResult, Record, SeriesName, SeriesSpec, Source, SourceError, SourceSpec, make_record
from collectors.base import StrictModel

log = logging.getLogger(__name__)
EXCEL = (".xlsx", ".xlsm")


class FileColumns(StrictModel):
    unit: str = Field(description="Column holding the unit code")
    date: str = Field(description="Column holding the date the figures refer to")
    example: str = Field("example", description="Column marking a template's example rows (true, yes, 1, x, có); "
                                                "a note column saying «example» or «ví dụ» marks one too")
    note: str = Field("note", description="Column of free remarks")


class FileSeries(SeriesSpec):
    """numerator/denominator/value name columns of the report."""


class FileDropSpec(SourceSpec):
    kind: Literal["file_drop"]
    folder: str = Field(description="Folder the units' reports are dropped into (relative to the configuration)")
    patterns: list[str] = Field(default_factory=lambda: ["*.csv", "*.xlsx"], min_length=1)
    columns: FileColumns
    sheet: str | None = Field(None, description="Excel sheet to read (default: the first)")
    delimiter: str = Field(",", min_length=1, max_length=1)
    series: dict[SeriesName, FileSeries] = Field(min_length=1)


@dataclass(frozen=True)
class Row:
    unit: str
    date: dt.date
    records: dict[str, Record]  # series -> record
    where: str  # "report.xlsx: row 7"
    example: bool = False  # a template's sample row: kept apart, never a figure


@dataclass
class ParsedFile:
    stamp: tuple[int, int]  # (mtime_ns, size)
    rows: list[Row]
    problems: list[str]


_MONTH_ONLY = re.compile(r"^(\d{4}-\d{2}|\d{1,2}/\d{4})$")
_DATE_FORMATS = ((re.compile(r"^\d{4}-\d{2}-\d{2}$"), "%Y-%m-%d"), (re.compile(r"^\d{4}-\d{2}$"), "%Y-%m"),
                 (re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$"), "%d/%m/%Y"), (re.compile(r"^\d{1,2}/\d{4}$"), "%m/%Y"))


def parse_date(raw: Any, column: str) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    text = str(raw).strip() if raw is not None else ""
    for pattern, fmt in _DATE_FORMATS:
        if pattern.match(text):
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                break
    raise ValueError(f"{column}: expected a date (2026-09-30, 2026-09, 30/09/2026 or 09/2026), got {raw!r}")


class FileDropSource(Source):
    kind = "file_drop"
    Spec = FileDropSpec

    def __init__(self, spec: FileDropSpec, context) -> None:
        super().__init__(spec, context)
        self.folder = context.resolve(spec.folder)
        self._files: dict[Path, ParsedFile] = {}

    def describe(self) -> str:
        return str(self.folder)

    async def fetch(self, periods: dict[str, Period]) -> FetchResult:
        return await self.context.run_blocking(lambda: self._fetch(periods))

    def _fetch(self, periods: dict[str, Period]) -> FetchResult:
        try:
            names = sorted(p for p in self.folder.iterdir() if p.is_file()
                           and any(fnmatch.fnmatch(p.name, pattern) for pattern in self.spec.patterns))
        except OSError as exc:
            raise SourceError("file", f"cannot list {self.folder}: {exc.strerror or exc}") from None
        current: dict[Path, ParsedFile] = {}
        for path in names:
            try:
                stat = path.stat()
            except OSError:
                continue  # removed while we looked
            stamp = (stat.st_mtime_ns, stat.st_size)
            cached = self._files.get(path)
            current[path] = cached if cached is not None and cached.stamp == stamp else self._parse(path, stamp)
        self._files = current
        return self._aggregate(current, periods)

    def _aggregate(self, files: dict[Path, ParsedFile], periods: dict[str, Period]) -> FetchResult:
        problems = [p for parsed in files.values() for p in parsed.problems]
        chosen: dict[tuple[str, dt.date], Row] = {}
        # Oldest file first, so a newer report of the same unit and date replaces the older one.
        for _, parsed in sorted(files.items(), key=lambda item: (item[1].stamp[0], item[0].name)):
            for row in parsed.rows:
                held = chosen.get((row.unit, row.date))
                if held is None or not row.example or held.example:  # an example never replaces a figure
                    chosen[(row.unit, row.date)] = row
        data: dict[str, dict[str, list[Record]]] = {name: {} for name in self.spec.series}
        for kind, period in periods.items():
            rows = [row for row in chosen.values() if self._counts_in(row.date, period, kind)]
            for name in self.spec.series:
                data[name][kind] = [row.records[name] for row in rows]
        return FetchResult(data, problems)

    def _counts_in(self, day: dt.date, period: Period, kind: str) -> bool:
        """Daily rows count in the period holding their day; a monthly row (dated on the month's first day)
        in the period holding most of its month when that period does not begin on the 1st (approximate)."""
        if self.spec.granularity == "monthly" and period.start.day != 1:
            middle = day.replace(day=1) + dt.timedelta(days=14)
            return period.contains(middle)
        return period.contains(day)

    # -- parsing -------------------------------------------------------------------------------
    def _parse(self, path: Path, stamp: tuple[int, int]) -> ParsedFile:
        label = path.name
        try:
            header, rows = self._read_excel(path) if path.suffix.lower() in EXCEL else self._read_csv(path)
        except (OSError, UnicodeDecodeError, csv.Error, ValueError, KeyError) as exc:
            return ParsedFile(stamp, [], [f"{label}: unreadable, skipped: {_short(exc)}"])
        except Exception as exc:  # openpyxl raises zipfile/XML errors on a damaged workbook
            return ParsedFile(stamp, [], [f"{label}: unreadable, skipped: {type(exc).__name__}"])
        needed = [self.spec.columns.unit, self.spec.columns.date]
        for series in self.spec.series.values():
            needed += [c for c in (series.numerator, series.denominator, series.value) if c]
        missing = sorted({c for c in needed if c not in header})
        if missing:
            return ParsedFile(stamp, [], [f"{label}: the header lacks the column(s) {', '.join(missing)}; "
                                          f"file skipped"])
        parsed: list[Row] = []
        problems: list[str] = []
        seen: set[tuple[str, dt.date]] = set()
        for number, values in rows:
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values.values()):
                continue
            where = f"{label}: row {number}"
            try:
                row = self._row(values, where)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if (row.unit, row.date) in seen:
                problems.append(f"{where}: unit {row.unit} on {row.date} is already given above in this file")
                continue
            seen.add((row.unit, row.date))
            parsed.append(row)
        for problem in problems:
            log.warning("source %s: row skipped: %s", self.spec.id, problem)
        return ParsedFile(stamp, parsed, problems)

    def _row(self, values: dict[str, Any], where: str) -> Row:
        code_column = self.spec.columns.unit
        raw = values.get(code_column)
        code = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw or "").strip()
        if not code:
            raise ValueError(f"{code_column}: missing unit code")
        unit = self.context.map_unit(code)
        if unit is None:
            raise ValueError(f"{code_column}: unknown unit {code!r}")
        day = parse_date(values.get(self.spec.columns.date), self.spec.columns.date)
        if self.spec.granularity != "monthly" and _MONTH_ONLY.match(str(values.get(self.spec.columns.date)).strip()):
            raise ValueError(f"{self.spec.columns.date}: a month ({values.get(self.spec.columns.date)!r}) in a "
                             f"{self.spec.granularity} report; give the day, or declare granularity: monthly")
        columns = self.spec.columns
        example = is_example({"note": values.get(columns.note), "example": values.get(columns.example)})
        records = {name: replace(make_record(unit, series, lambda _role, column: values.get(column)), example=example)
                   for name, series in self.spec.series.items()}
        return Row(unit, day, records, where, example)

    def _read_csv(self, path: Path):
        text = path.read_text(encoding="utf-8-sig")
        reader = csv.DictReader(text.splitlines(), delimiter=self.spec.delimiter)
        header = [h.strip() for h in reader.fieldnames or [] if h]

        def rows():
            for row in reader:
                yield reader.line_num, {(k or "").strip(): v for k, v in row.items() if k is not None}
        return header, list(rows())

    def _read_excel(self, path: Path):
        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook[self.spec.sheet] if self.spec.sheet else workbook.worksheets[0]
            lines = sheet.iter_rows(values_only=True)
            first = next(lines, None) or ()
            header = [str(c).strip() if c is not None else "" for c in first]
            rows = [(number, dict(zip(header, line, strict=False))) for number, line in enumerate(lines, start=2)]
        finally:
            workbook.close()
        return [h for h in header if h], rows


def _short(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0][:200] or type(exc).__name__


SOURCE = FileDropSource
