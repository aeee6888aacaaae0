"""Monthly reports dropped into a folder by units, as CSV or Excel (xlsx) files.

Each row is one unit's figures for one reporting date: a unit code column, a date column
(``2026-09-30`` or ``30/09/2026``, day first as Excel writes on a vi-VN machine; ``2026-09`` or
``09/2026`` for a month; an Excel date cell: see agent.dates), and one column per number the
series map. A row is counted in every period containing its date. A month is accepted only from a
source declared ``granularity: monthly``; it counts on its first day, or, in a period that does not
begin on the 1st (accepted with ``approximate_periods``), in the period holding most of the month.
Rows marked as examples (the template's sample rows) are kept apart and never counted as figures.
People type these files, so a malformed row (text in a number column, an unknown unit, a date that
is not one or is after today, numerator above denominator) is reported with its file and row and
skipped, and the rest of the file is kept; a file whose header lacks a mapped column is reported and
skipped whole. A unit's figures for one date given twice are counted once: the newest file wins.

Nothing already counted is lost to a bad new version of a file: when it is unreadable, over
``max_file_size``, has no rows, or has a bad row, the units it no longer gives a good row for keep
their rows from the file's last version (reported). A clean version is the truth, and replaces the
last one whole. A file rewritten in place or renamed over while it is read is not taken half-read:
its last version stays, and it is read again at the next fetch.

Files are parsed again only when they change, streamed (a CSV row at a time, a workbook in
openpyxl's read-only mode), on the runner's thread pool (openpyxl and large CSVs block). A workbook
is read by a short-lived child process (agent.sources.child), so openpyxl never enters the agent.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ByteSize, Field

from agent.domain.dates import parse_day, refuse_future
from agent.domain.models import StrictModel
from agent.domain.periods import Period, today_in
from agent.domain.steadyfile import DEFAULT_MAX_BYTES, FileChanged, MaxFileSize, stamp, steady_binary, steady_text
from agent.sources import child
from agent.sources.base import FetchResult, Record, SeriesName, SeriesSpec, Source, SourceError, SourceSpec, make_record
from agent.sources.manual import is_example
from collectors.lazyimport import import_without

log = logging.getLogger(__name__)
EXCEL = (".xlsx", ".xlsm")
LOGGED_ROWS = 20  # rows logged one by one per file version; the rest are counted


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
    max_file_size: MaxFileSize = ByteSize(DEFAULT_MAX_BYTES)
    series: dict[SeriesName, FileSeries] = Field(min_length=1)


@dataclass(frozen=True, slots=True)  # a big report holds many: no __dict__ each
class Row:
    unit: str
    date: dt.date
    records: tuple[Record, ...]  # one per series, in the order of the configuration's series
    line: int
    example: bool = False  # a template's sample row: kept apart, never a figure


@dataclass
class ParsedFile:
    stamp: tuple[int, ...]  # agent.steadyfile.stamp: what changes when the file is rewritten or replaced
    mtime_ns: int
    rows: list[Row]
    problems: list[str]
    read_on: dt.date | None = None
    future_rows: bool = False  # a row refused as after today: read again on a later day

    @property
    def faulty(self) -> bool:
        return bool(self.problems)  # a header-only or empty version has its problem too


class FileDropSource(Source):
    kind = "file_drop"
    Spec = FileDropSpec
    maps_units = True  # each row's unit code is mapped (and an unknown one refused) as it is parsed

    def __init__(self, spec: FileDropSpec, context) -> None:
        super().__init__(spec, context)
        self.folder = context.resolve(spec.folder)
        self._files: dict[Path, ParsedFile] = {}
        self._cells: dict[Path, tuple[Any, ...]] = {}  # what the child read of this fetch's changed workbooks
        self._earliest = dt.date.min  # the first day of the earliest period served: older rows count nowhere

    def describe(self) -> str:
        return str(self.folder)

    async def fetch(self, periods: dict[str, Period]) -> FetchResult:
        return await self.context.run_blocking(lambda: self._fetch(periods))

    def _fetch(self, periods: dict[str, Period]) -> FetchResult:
        deadline = time.monotonic() + self.spec.timeout
        try:
            names = sorted(p for p in self.folder.iterdir() if p.is_file()
                           and any(fnmatch.fnmatch(p.name, pattern) for pattern in self.spec.patterns))
        except OSError as exc:
            raise SourceError("file", f"cannot list {self.folder}: {exc.strerror or exc}") from None
        today = today_in(self.context.timezone)
        self._earliest = min((p.start for p in periods.values()), default=dt.date.min)
        current: dict[Path, ParsedFile] = {}
        changed: list[tuple[Path, Any]] = []
        for path in names:
            try:
                status = path.stat()
            except OSError:
                continue  # removed while we looked
            cached = self._files.get(path)
            if (cached is not None and cached.stamp == stamp(status)
                    and not (cached.future_rows and cached.read_on != today)):
                current[path] = cached
                continue
            changed.append((path, status))
        self._read_workbooks([path for path, _ in changed if path.suffix.lower() in EXCEL], deadline)
        for path, status in changed:
            cached = self._files.get(path)
            try:
                parsed = self._parse(path, status, today)
            except FileChanged as exc:
                parsed = self._changed(path, cached, str(exc))
            current[path] = _keep_lost(path.name, parsed, cached)
        self._files = current
        return self._aggregate(current, periods)

    def _changed(self, path: Path, held: ParsedFile | None, message: str) -> ParsedFile:
        """Its last version stays, with the old stamp, so the next fetch reads it again."""
        problem = f"{path.name}: {message.split(' ', 1)[1]}; its last version is kept, read again next time"
        log.warning("source %s: %s", self.spec.id, problem)
        if held is None:
            return ParsedFile((), 0, [], [problem])
        earlier = [p for p in held.problems if "while it was read" not in p]
        return replace(held, problems=[*earlier, problem], future_rows=False)

    def _aggregate(self, files: dict[Path, ParsedFile], periods: dict[str, Period]) -> FetchResult:
        problems = [p for parsed in files.values() for p in parsed.problems]
        chosen: dict[tuple[str, dt.date], Row] = {}
        # Oldest file first, so a newer report of the same unit and date replaces the older one.
        for _, parsed in sorted(files.items(), key=lambda item: (item[1].mtime_ns, item[0].name)):
            for row in parsed.rows:
                held = chosen.get((row.unit, row.date))
                if held is None or not row.example or held.example:  # an example never replaces a figure
                    chosen[(row.unit, row.date)] = row
        data: dict[str, dict[str, list[Record]]] = {name: {} for name in self.spec.series}
        for kind, period in periods.items():
            rows = [row for row in chosen.values() if self._counts_in(row.date, period, kind)]
            for index, name in enumerate(self.spec.series):
                data[name][kind] = [row.records[index] for row in rows]
        return FetchResult(data, problems)

    def _counts_in(self, day: dt.date, period: Period, kind: str) -> bool:
        """Daily rows count in the period holding their day; a monthly row (dated on the month's first day)
        in the period holding most of its month when that period does not begin on the 1st (approximate)."""
        if self.spec.granularity == "monthly" and period.start.day != 1:
            middle = day.replace(day=1) + dt.timedelta(days=14)
            return period.contains(middle)
        return period.contains(day)

    # -- parsing -------------------------------------------------------------------------------
    def _parse(self, path: Path, status, today: dt.date) -> ParsedFile:
        label = path.name
        mark = (stamp(status), status.st_mtime_ns)
        opened = self._excel_rows if path.suffix.lower() in EXCEL else self._csv_rows
        try:
            with opened(path) as (header, rows):
                return self._parse_rows(label, header, rows, mark, today)
        except FileChanged:
            raise
        except Exception as exc:  # openpyxl raises zipfile/XML errors on a damaged workbook
            _raise_if_changed(path, status)  # a read that broke because the file moved under it
            known = (OSError, UnicodeDecodeError, csv.Error, ValueError, KeyError)
            why = _short(exc) if isinstance(exc, known) else type(exc).__name__
            problem = f"{label}: unreadable, skipped: {why}"
            log.warning("source %s: %s", self.spec.id, problem)
            return ParsedFile(mark[0], mark[1], [], [problem])

    def _parse_rows(self, label: str, header: list[str], rows, mark, today: dt.date) -> ParsedFile:
        needed = [self.spec.columns.unit, self.spec.columns.date]
        for series in self.spec.series.values():
            needed += [c for c in (series.numerator, series.denominator, series.value) if c]
        missing = sorted({c for c in needed if c not in header})
        if missing:
            problem = f"{label}: the header lacks the column(s) {', '.join(missing)}; file skipped"
            log.warning("source %s: %s", self.spec.id, problem)
            return ParsedFile(mark[0], mark[1], [], [problem])
        parsed: list[Row] = []
        problems: list[str] = []
        seen: set[tuple[str, dt.date]] = set()
        future = False
        good = 0  # good rows, kept or too old to count
        for number, values in rows:
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values.values()):
                continue
            where = f"{label}: row {number}"
            try:
                row = self._row(values, number, today)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                future = future or "after today" in str(exc)
                continue
            good += 1
            if row.date < self._earliest:  # it counts in no period any more: not kept, nor checked again
                continue
            if (row.unit, row.date) in seen:
                problems.append(f"{where}: unit {row.unit} on {row.date} is already given above in this file")
                continue
            seen.add((row.unit, row.date))
            parsed.append(row)
        if not good and not problems:
            problems.append(f"{label}: no rows of figures (a header only?)")
        for problem in problems[:LOGGED_ROWS]:
            log.warning("source %s: row skipped: %s", self.spec.id, problem)
        if len(problems) > LOGGED_ROWS:
            log.warning("source %s: %s: %d more rows skipped", self.spec.id, label, len(problems) - LOGGED_ROWS)
        return ParsedFile(mark[0], mark[1], parsed, problems, today, future)

    def _row(self, values: dict[str, Any], line: int, today: dt.date) -> Row:
        code_column = self.spec.columns.unit
        raw = values.get(code_column)
        code = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw or "").strip()
        if not code:
            raise ValueError(f"{code_column}: missing unit code")
        unit = self.context.map_unit(code)
        if unit is None:
            raise ValueError(f"{code_column}: unknown unit {code!r}")
        raw_day = values.get(self.spec.columns.date)
        day, month_only = parse_day(raw_day, self.spec.columns.date, months=True)
        if self.spec.granularity != "monthly" and month_only:
            raise ValueError(f"{self.spec.columns.date}: a month ({raw_day!r}) in a "
                             f"{self.spec.granularity} report; give the day, or declare granularity: monthly")
        refuse_future(day, today, self.spec.columns.date, raw_day)
        columns = self.spec.columns
        example = is_example({"note": values.get(columns.note), "example": values.get(columns.example)})
        records = tuple(replace(make_record(unit, series, lambda _role, column: values.get(column)), example=example)
                        for series in self.spec.series.values())
        return Row(sys.intern(unit), day, records, line, example)

    @contextmanager
    def _csv_rows(self, path: Path) -> Iterator[tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]]:
        """The header and the rows, read one at a time from one open descriptor."""
        with steady_text(path, self.spec.max_file_size) as stream:
            reader = csv.DictReader(stream, delimiter=self.spec.delimiter)
            header = [h.strip() for h in reader.fieldnames or [] if h]
            yield header, ((reader.line_num, {(k or "").strip(): v for k, v in row.items() if k is not None})
                           for row in reader)

    def _read_workbooks(self, paths: list[Path], deadline: float) -> None:
        """Every changed workbook of this fetch read by one child process (openpyxl never enters the agent).
        It gets what is left of the fetch's timeout, less a tenth: one that hangs costs these files (their
        last versions kept), not the whole fetch."""
        self._cells = {}
        if not paths:
            return
        try:
            answers = child.call("agent.sources.file_drop", "read_workbooks",
                                 ([str(p) for p in paths], int(self.spec.max_file_size), self.spec.sheet),
                                 0.9 * (deadline - time.monotonic()))
        except child.ChildFailed as exc:  # crashed, hung, or garbage: the files are skipped, their last rows kept
            answers = [("unreadable", exc.message)] * len(paths)
        self._cells = dict(zip(paths, answers, strict=True))

    @contextmanager
    def _excel_rows(self, path: Path) -> Iterator[tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]]:
        answer = self._cells.pop(path)
        if answer[0] == "changed":
            raise FileChanged(answer[1])
        if answer[0] == "unreadable":
            raise WorkbookUnreadable(answer[1])
        _, header, lines = answer
        yield ([h for h in header if h],
               ((number, dict(zip(header, line, strict=False))) for number, line in enumerate(lines, start=2)))


class WorkbookUnreadable(ValueError):
    """What the child said of a workbook it could not read (its text, or the library error's type name)."""


def read_workbooks(paths: list[str], max_size: int, sheet: str | None) -> list[tuple[Any, ...]]:
    """In the child: for each workbook, ("cells", header, rows), or ("changed" | "unreadable", why) as text."""
    return [read_workbook(path, max_size, sheet) for path in paths]


def read_workbook(path: str, max_size: int, sheet: str | None) -> tuple[Any, ...]:
    load_workbook = _openpyxl_reader()
    try:
        with steady_binary(Path(path), max_size) as raw:
            workbook = load_workbook(raw, read_only=True, data_only=True)
            try:
                worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
                lines = worksheet.iter_rows(values_only=True)
                first = next(lines, None) or ()
                header = [str(c).strip() if c is not None else "" for c in first]
                return "cells", header, list(lines)
            finally:
                workbook.close()
    except FileChanged as exc:
        return "changed", str(exc)
    except Exception as exc:  # openpyxl raises zipfile/XML errors on a damaged workbook
        known = (OSError, UnicodeDecodeError, csv.Error, ValueError, KeyError)
        return "unreadable", _short(exc) if isinstance(exc, known) else type(exc).__name__


def _openpyxl_reader() -> Any:
    """openpyxl's ``load_workbook``, imported on the first workbook and without numpy and Pillow: openpyxl
    imports both when installed, to write numpy numbers and images (25 MiB and a BLAS thread pool an agent
    reading reports never uses). A process that already holds them (the report command) keeps them."""
    return import_without("openpyxl", ("numpy", "PIL")).load_workbook


def _keep_lost(label: str, new: ParsedFile, held: ParsedFile | None) -> ParsedFile:
    """A faulty new version does not take back what the last one gave: units it gives no good row for
    keep their rows. A clean version is taken whole (a unit dropped from it on purpose is gone)."""
    if held is None or held is new or not new.faulty:
        return new
    given = {row.unit for row in new.rows}
    lost = [row for row in held.rows if row.unit not in given]
    if not lost:
        return new
    units = sorted({row.unit for row in lost})
    note = (f"{label}: no good row now for unit(s) {', '.join(units[:10])}{' ...' if len(units) > 10 else ''}; "
            f"their rows from the file's last version are kept")
    log.warning("%s", note)
    return replace(new, rows=[*new.rows, *lost], problems=[*new.problems, note])


def _raise_if_changed(path: Path, status) -> None:
    try:
        now = path.stat()
    except OSError:
        raise FileChanged(f"{path.name} was removed while it was read") from None
    if stamp(now) != stamp(status):
        raise FileChanged(f"{path.name} was rewritten while it was read")


def _short(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0][:200] or type(exc).__name__


SOURCE = FileDropSource
