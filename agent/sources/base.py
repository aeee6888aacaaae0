"""What every source kind shares: its configuration, its records, its errors, and the fetch contract.

A fetch either returns complete data for every series and period (or, where series are fetched
apart, complete data for some and a :class:`SourceError` for each of the others), or raises
:class:`SourceError` with a short fixed ``reason`` (it becomes a label) and a message for the log;
the runner then keeps the previous values (of the source, or of the failed series). Messages never
carry a secret: each source builds them from its own words, and :func:`redact` scrubs the resolved
secrets out of any library text quoted in them.
"""

from __future__ import annotations

import math
import string
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, model_validator

from agent.domain.models import Duration, Ident, StrictModel
from agent.domain.periods import Period
from agent.domain.secrets import SecretValue

SeriesName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=80)]
# Placeholders a query parameter may carry; {period_end} is the exclusive end (the next period's
# first day), {period_last_day} the inclusive one, for APIs that take «đến ngày».
PLACEHOLDERS = ("period_start", "period_end", "period_last_day", "period", "period_name")

T = TypeVar("T")


class BlockingRunner(Protocol):
    """Runs a blocking call in a thread pool: generic per call, which a Callable alias cannot say."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


class SourceError(Exception):
    """A failed fetch. ``reason`` is a fixed word (timeout, auth, bad_body, missing_field...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)  # a big report holds one per row and series
class Record:
    """One unit's figures for one series and period; ``unit`` None is a province-wide total."""

    unit: str | None
    numerator: float | None = None
    denominator: float | None = None
    value: float | None = None
    example: bool = False  # a row marked as an example (the report template's sample rows): never a figure


# series -> period kind -> records
Fetched = dict[str, dict[str, list[Record]]]


@dataclass
class FetchResult:
    data: Fetched
    # Rows skipped as malformed (file drops): "file.csv: row 7: numerator: expected a number".
    problems: list[str] = field(default_factory=list)
    # Series that failed on their own (the others in ``data`` are complete): they keep their last values.
    failed: dict[str, SourceError] = field(default_factory=dict)
    # (series, period kind) -> why it has no value although its query ran (SQL NULL).
    no_value: dict[tuple[str, str], str] = field(default_factory=dict)


class SeriesSpec(StrictModel):
    """How one series' numbers are found: numerator and denominator (a ratio) or a value.

    The strings are JSON paths (http_json) or column names (sql, file_drop)."""

    numerator: str | None = None
    denominator: str | None = None
    value: str | None = None

    @model_validator(mode="after")
    def _ratio_or_value(self):
        if self.value is not None:
            if self.numerator is not None or self.denominator is not None:
                raise ValueError("give value, or numerator and denominator, not both")
        elif self.numerator is None or self.denominator is None:
            raise ValueError("give numerator and denominator (a ratio), or value")
        return self

    @property
    def shape(self) -> str:
        return "value" if self.value is not None else "ratio"


class SourceSpec(StrictModel):
    """Settings every source has. Application figures change slowly: fetch every few minutes to hours."""

    id: Ident
    kind: str
    granularity: Literal["event", "daily", "monthly"] = Field(
        description="What the system's figures are made of: single events (documents, dossiers with their "
                    "dates), daily totals, or monthly totals. Monthly figures cannot be cut at a 10th-to-9th "
                    "quarter: see approximate_periods")
    approximate_periods: bool = Field(False, description="Accept monthly figures for periods that do not begin "
                                                         "on the 1st: each month counts in the period holding "
                                                         "most of its days, and the values are marked approximate")
    interval: Duration = 900.0
    timeout: Duration = 60.0
    stale_after: Duration | None = Field(None, description="Values older than this are stale "
                                                           "(default: three intervals)")
    unit_map: dict[str, str] = Field(default_factory=dict, description="The system's unit codes -> unit ids")

    @model_validator(mode="after")
    def _timeout_within_interval(self):
        if self.timeout > self.interval:
            raise ValueError(f"timeout ({self.timeout:g}s) is longer than the interval ({self.interval:g}s)")
        return self

    @property
    def stale_limit(self) -> float:
        return self.stale_after if self.stale_after is not None else 3 * self.interval

    def series_shapes(self) -> dict[str, str]:
        return {name: s.shape for name, s in getattr(self, "series", {}).items()}


class SourceContext:
    """What the runner lends a source: the configuration's directory and a thread pool for blocking work."""

    def __init__(self, base_dir: Path, timezone: str, known_units: set[str] | None = None,
                 unit_map: dict[str, str] | None = None,
                 run_blocking: BlockingRunner | None = None) -> None:
        self.base_dir = base_dir
        self.timezone = timezone
        self.known_units = known_units
        self.unit_map = unit_map or {}
        self._run_blocking = run_blocking
        self._lock = threading.Lock()
        self._threads = 0

    def map_unit(self, code: str) -> str | None:
        """The unit id for a system's unit code (via ``unit_map``), or None if the province has no such unit."""
        unit = self.unit_map.get(code, code)
        return unit if self.known_units is None or unit in self.known_units else None

    def resolve(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() else self.base_dir / path

    def rebind(self, run_blocking: BlockingRunner) -> None:
        """Use another runner's thread pool (the source survived a reload)."""
        self._run_blocking = run_blocking

    @property
    def threads_running(self) -> int:
        """Blocking calls still running, including any whose fetch already timed out."""
        return self._threads

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        import asyncio  # here, not at the top: check-config validates the sources without running them

        state = {"started": False, "dropped": False}

        def counted() -> T:
            with self._lock:
                if state["dropped"]:  # cancelled while queued: never run it
                    raise asyncio.CancelledError
                state["started"] = True
            try:
                return fn()
            finally:
                with self._lock:
                    self._threads -= 1

        with self._lock:
            self._threads += 1
        try:
            if self._run_blocking is None:
                return await asyncio.to_thread(counted)
            return await self._run_blocking(counted)
        except BaseException:
            with self._lock:
                if not state["started"] and not state["dropped"]:
                    state["dropped"] = True  # it will not run: it holds no thread
                    self._threads -= 1
            raise


class Source(ABC):
    kind: ClassVar[str]
    Spec: ClassVar[type[SourceSpec]]

    def __init__(self, spec: Any, context: SourceContext) -> None:
        self.spec = spec
        self.context = context

    @abstractmethod
    async def fetch(self, periods: dict[str, Period]) -> FetchResult:
        """Every series for every period, or raise SourceError."""

    def describe(self) -> str:
        """Where the source reads from, safe for logs (no credentials, no query string)."""
        return self.spec.id

    def hosts(self) -> list[str]:
        """Network addresses the source contacts (for the probe allowlist); none for local files."""
        return []

    def secrets(self) -> list[SecretValue]:
        return []

    async def close(self) -> None:
        return None


# --- helpers shared by the kinds ---------------------------------------------------------------


def check_template(text: str) -> str:
    """Only the known placeholders, so a typo is a configuration error, not a literal in a request."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ValueError(f"bad template {text!r}: {exc}") from None
    unknown = [f for f in fields if f not in PLACEHOLDERS]
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; known: {', '.join(PLACEHOLDERS)}")
    return text


def period_values(period: Period) -> dict[str, str]:
    return {"period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
            "period_last_day": period.last_day.isoformat(), "period": period.kind, "period_name": period.name}


def to_number(raw: Any, what: str) -> float:
    """A count or amount: real numbers only (bools, text and NaN are errors naming ``what``)."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{what}: expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        number = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            raise ValueError(f"{what}: expected a number, got {raw!r}") from None
    else:
        try:  # Decimal from SQL drivers
            number = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: expected a number, got {type(raw).__name__}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what}: expected a finite number, got {raw!r}")
    return number


def make_record(unit: str | None, series: SeriesSpec, get: Callable[[str, str], Any]) -> Record:
    """A record from one row/item: ``get(role, field)`` returns the raw value of a mapped field."""
    if series.value is not None:
        return Record(unit, value=to_number(get("value", series.value), series.value))
    assert series.numerator is not None and series.denominator is not None  # a ratio has both (SeriesSpec)
    numerator = to_number(get("numerator", series.numerator), series.numerator)
    denominator = to_number(get("denominator", series.denominator), series.denominator)
    if numerator < 0 or denominator < 0:
        raise ValueError(f"{series.numerator}/{series.denominator}: counts cannot be negative")
    if numerator > denominator:
        raise ValueError(f"{series.numerator} ({numerator:g}) exceeds {series.denominator} ({denominator:g})")
    return Record(unit, numerator, denominator)


def unit_code(raw: Any, what: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError(f"{what}: expected a unit code, got {raw!r}")
    text = str(raw).strip()
    if not text:
        raise ValueError(f"{what}: empty unit code")
    return text


def mask_url(url: str) -> str:
    """scheme://host[:port]/path: no user, password or query string (tokens travel there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<unparseable URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:limit]
