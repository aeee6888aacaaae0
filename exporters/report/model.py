"""What a report holds: one model, rendered into every format."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# A figure's verdict against the plan's target for the period.
MET, NOT_MET, NOT_JUDGED, NO_DATA = "met", "not_met", "not_judged", "no_data"


@dataclass
class UnitRow:
    """One unit of a KPI's inventory in the breakdown: its group (district), share of the period up, down time."""

    unit: str
    name: str
    group: str
    connected: bool
    up_share: float | None  # None: no data in the period
    down_seconds: float
    unobserved_seconds: float
    group_name: str = ""


@dataclass
class GroupRow:
    group: str
    name: str
    numerator: float
    denominator: float
    verdict: str = ""  # against the KPI's target, where the breakdown is of a source-backed ratio

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass
class TargetView:
    phase: str
    deadline: dt.date
    comparator: str
    value: float | None
    low: float | None
    high: float | None
    text: str
    origin: str
    overdue: bool  # the deadline passed before the period ended


@dataclass
class Figure:
    """One KPI over one report window."""

    kpi: str
    title_vi: str
    title_en: str
    area: str
    kpi_class: str
    measure: str
    unit: str  # ratio | count | vnd | value | yes_no
    origin: str  # plan | ops (the active target's)
    target: TargetView | None
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    verdict: str = NO_DATA
    how: str = ""  # how the figure was computed (connected over the period, availability, ...), for people
    cutoff_value: float | None = None  # the state at the cut-off instant
    cutoff_numerator: float | None = None
    cutoff_denominator: float | None = None
    previous_value: float | None = None
    change: float | None = None
    history: list[tuple[str, float | None]] = field(default_factory=list)  # (window name, value)
    groups: list[GroupRow] = field(default_factory=list)
    group_level: str = ""
    below: list[UnitRow] = field(default_factory=list)  # units not counted (not connected, not available)
    interrupted: list[UnitRow] = field(default_factory=list)  # counted, but down an hour or more
    gaps: list[str] = field(default_factory=list)  # why there is no figure, or what weakens it
    notes: list[str] = field(default_factory=list)
    source: str = ""
    as_of: dt.date | None = None  # the date a manual figure refers to
    document: str = ""
    document_date: dt.date | None = None
    section: str = ""
    heading: str = ""
    quote: str = ""
    queries: list[str] = field(default_factory=list)  # ids into Report.queries


@dataclass
class QueryRow:
    id: str
    expr: str
    at: float
    series: int
    result: list[dict[str, Any]]


@dataclass
class Report:
    province_code: str
    province_vi: str
    province_en: str
    timezone: str
    window: str
    window_kind: str
    window_number: int
    start: dt.date
    last_day: dt.date
    complete: bool  # the window has ended (else: to date)
    evaluated_at: float
    generated_at: float
    previous_window: str
    history_windows: list[str]
    server: str  # the query API's address, without credentials
    connected_min_up: float
    simulated: bool
    issuer: dict[str, str]
    plan_vi: str
    plan_en: str
    signer_vi: str
    signer_en: str
    recipients_vi: list[str]
    recipients_en: list[str]
    figures: list[Figure] = field(default_factory=list)
    queries: list[QueryRow] = field(default_factory=list)

    @property
    def plan(self) -> list[Figure]:
        return [f for f in self.figures if f.origin == "plan"]

    @property
    def ops(self) -> list[Figure]:
        return [f for f in self.figures if f.origin == "ops"]

    @property
    def gaps(self) -> list[Figure]:
        return [f for f in self.figures if f.gaps]

    def counts(self, figures: list[Figure]) -> dict[str, int]:
        out = {MET: 0, NOT_MET: 0, NOT_JUDGED: 0, NO_DATA: 0}
        for figure in figures:
            out[figure.verdict] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dt.date):
                return value.isoformat()
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if dataclasses.is_dataclass(value):
                return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return value

        out = plain(self)
        out["summary"] = {"plan": self.counts(self.plan), "ops": self.counts(self.ops),
                          "gaps": [f.kpi for f in self.gaps]}
        return out
