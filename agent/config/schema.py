"""The province configuration's schema (pydantic): what a province may say, and nothing else.

Everything province-specific lives here as data: the administrative hierarchy (any depth, any
level names), the monitored targets attached to units, collector settings, and the KPIs with their
citations and targets. agent/config/loading.py reads a file into a validated :class:`Config`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ByteSize,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.domain.httpauth import AuthSpec, check_api_url
from agent.domain.models import Duration, Ident, Number, Share, StrictModel
from agent.domain.periods import PeriodKind, ReportingSpec
from agent.domain.steadyfile import DEFAULT_MAX_BYTES, MaxFileSize

LABEL_NAME = r"^[a-z][a-z0-9_]*$"
# Labels the agent itself sets; a hierarchy level cannot reuse them.
RESERVED_LABELS = frozenset(
    {"unit", "level", "target", "collector", "kpi", "reason", "phase", "comparator", "origin", "bound",
     "group", "group_level", "instance", "job", "le", "quantile", "unit_name"}
)

def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name




class ProvinceSpec(StrictModel):
    code: Ident
    name_vi: str
    name_en: str
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "Asia/Ho_Chi_Minh"


class UnitSpec(StrictModel):
    """An administrative unit or agency. ``generated`` marks names invented for lack of the official list."""

    id: Ident
    name_vi: str
    name_en: str | None = None
    level: str
    generated: bool = False
    children: list[UnitSpec] = Field(default_factory=list)


class CollectorSpec(StrictModel):
    interval: Duration = 60.0
    timeout: Duration = 10.0
    concurrency: int = Field(32, ge=1, le=10000)
    jitter: Share = Field(0.1, description="Share of the interval used to spread probes (10% or 0.1).")
    down_after: int = Field(2, ge=1, le=100, description="Failed probes in a row before a target that was up "
                                                          "counts as down (1: at the first failure).")
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> CollectorSpec:
        if self.timeout > self.interval:
            raise ValueError(f"timeout ({self.timeout:g}s) is longer than the interval ({self.interval:g}s)")
        return self


class TargetSpec(StrictModel):
    id: Ident
    unit: str
    collector: str
    name: str | None = None
    tags: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)


class Citation(StrictModel):
    document: str = Field(description="Document number, e.g. 59/KH-UBND")
    date: dt.date
    section: str
    quote: str = Field(description="The target's text, verbatim from the document")
    heading: str | None = Field(None, description="The heading a listed target sits under, verbatim, when the "
                                                  "number is stated there («Thực hiện đạt tỷ lệ 100% đối với "
                                                  "các chỉ tiêu sau đây»)")
    seed: str | None = Field(None, description="File under shared/seeds holding the document")


Comparator = Literal[">=", ">", "=", "<=", "<", "range", "approx", "qualitative"]


class KpiTarget(StrictModel):
    """One phase's target. ``approx`` (the plans' «khoảng») is met at or above the value."""

    phase: str
    deadline: dt.date
    comparator: Comparator
    value: Number | None = None
    low: Number | None = None
    high: Number | None = None
    text: str | None = Field(None, description="The plan's words kept verbatim: the whole target when "
                                               "qualitative («hầu hết»), beside the number otherwise («tất cả» = 100%)")
    origin: Literal["plan", "ops"] = Field(
        "plan", description="plan: quoted from the plan; ops: the operations team's own objective"
    )

    @model_validator(mode="after")
    def _fields_match_comparator(self) -> KpiTarget:
        if self.comparator == "range":
            if self.low is None or self.high is None or self.value is not None:
                raise ValueError("a range target needs low and high (and no value)")
            if self.low > self.high:
                raise ValueError("range low is above high")
        elif self.comparator == "qualitative":
            if not self.text or self.value is not None or self.low is not None or self.high is not None:
                raise ValueError("a qualitative target keeps its words in text and has no number")
        elif self.value is None or self.low is not None or self.high is not None:
            raise ValueError(f"a {self.comparator!r} target needs a value (and no low/high)")
        return self

    def bounds(self) -> list[float]:
        return [v for v in (self.value, self.low, self.high) if v is not None]


class Selector(StrictModel):
    """Which targets a measure looks at."""

    collector: str | None = None
    tags: list[str] = Field(default_factory=list)
    level: str | None = Field(None, description="Count units at this level instead of targets")
    under: str | None = Field(None, description="Only units below this unit id")


class InventoryExclusion(StrictModel):
    """A unit the plan itself leaves out of an inventory, with the plan's words that say so."""

    unit: str
    reason: str = Field(description="Why, verbatim from the plan where it says so («thanh tra tỉnh không có "
                                    "thủ tục hành chính»)")
    assumed: bool = Field(False, description="The plan names no such unit: this exclusion is the configuration's "
                                             "reading, shown as an assumption")


class InventorySpec(StrictModel):
    """The units a plan sentence counts («22 sở, ngành», «230 xã», «100% trạm y tế xã»): a KPI's denominator.

    Members are every unit at ``levels`` (below ``under``), plus ``units``, minus ``exclude``.
    ``expected`` is the plan's own count: the configuration must match it. An inventory whose real
    list is not known is declared ``complete: false`` with the reason; KPIs over it stay pending
    instead of dividing by whatever examples are configured.
    """

    id: Ident
    title_vi: str
    title_en: str
    levels: list[str] = Field(default_factory=list)
    under: str | None = None
    units: list[str] = Field(default_factory=list)
    exclude: list[InventoryExclusion] = Field(default_factory=list)
    expected: int | None = Field(None, ge=0, description="How many units the plan counts")
    complete: bool = True
    incomplete_reason: str | None = Field(None, description="Why the list is not the real one (required when "
                                                            "complete is false)")

    @model_validator(mode="after")
    def _reason_when_incomplete(self) -> InventorySpec:
        if not self.complete and not self.incomplete_reason:
            raise ValueError("an incomplete inventory needs incomplete_reason: say what is missing")
        if not self.levels and not self.units:
            raise ValueError("an inventory needs levels or units")
        return self


class CoverageMeasure(StrictModel):
    """Share of an inventory's units (or of the selected targets) that are up: WAN to 230/230 communes.

    Units are up by their own probes (``select``), or by a yes/no a source reports per unit
    (``source`` and ``series``: the unit counts when its value is above 0). The denominator is the
    inventory: ``select.level`` (every unit at that level) or a declared ``inventory``; a unit
    without data counts as not covered.
    """

    kind: Literal["coverage"]
    select: Selector = Field(default_factory=Selector)
    inventory: str | None = Field(None, description="Declared inventory (inventories:) giving the denominator")
    source: str | None = Field(None, description="A source reporting a yes/no (0/1) per unit, instead of probes")
    series: str | None = None
    period: PeriodKind = Field("year", description="With source: the reporting period giving the value")
    unit_up: Literal["any", "all"] = "any"
    group_by: str | None = Field(None, description="Also export the coverage per unit at this level")
    connected_min_up: Share | None = Field(None, description="Period form: a unit counts as connected in a "
                                                             "period when up at least this share of it (an ops "
                                                             "threshold; default reporting.connected_min_up)")

    @model_validator(mode="after")
    def _one_way_to_count(self) -> CoverageMeasure:
        if self.inventory is not None and self.select.level is not None:
            raise ValueError("give the denominator once: select.level or inventory, not both")
        if (self.source is None) != (self.series is None):
            raise ValueError("a coverage read from a source needs both source and series")
        if self.source is not None:
            if self.inventory is None and self.select.level is None:
                raise ValueError("a coverage read from a source counts the units of an inventory: give inventory")
            if self.select.collector or self.select.tags:
                raise ValueError("a coverage read from a source selects no targets (drop select.collector/tags)")
        return self

    @property
    def from_source(self) -> bool:
        return self.source is not None

    @property
    def over_units(self) -> bool:
        return self.inventory is not None or self.select.level is not None


class AvailabilityMeasure(StrictModel):
    kind: Literal["availability"]
    select: Selector
    window: Duration = 86400.0


class CountMeasure(StrictModel):
    """How many selected targets are up (the plan's «trên 95 hệ thống»)."""

    kind: Literal["count"]
    select: Selector


class _Imported(StrictModel):
    """A ratio or value from the manual data file, or from a series of a configured source."""

    source: str = "manual"
    series: str | None = Field(None, description="The source's series (sources: ... series:)")
    levels: list[str] = Field(default_factory=list, description="Only units at these levels (default: all)")
    under: str | None = Field(None, description="Only units below this unit id")
    group_by: str | None = Field(None, description="Also export the KPI per unit at this level")
    period: PeriodKind = Field("year", description="Reporting period giving the headline value (year to date)")


class RatioMeasure(_Imported):
    kind: Literal["ratio"]


class ValueMeasure(_Imported):
    kind: Literal["value"]


Measure = Annotated[
    CoverageMeasure | AvailabilityMeasure | CountMeasure | RatioMeasure | ValueMeasure,
    Field(discriminator="kind"),
]


class KpiSpec(StrictModel):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=80)]
    kpi_class: Literal["direct", "from_system", "manual"] = Field(alias="class")
    area: str = "other"
    title_vi: str
    title_en: str
    unit: Literal["ratio", "count", "vnd", "value", "yes_no"] = Field(
        "ratio", description="ratio (0..1, written 90%), count, vnd, value, or yes_no (1 yes, 0 no)")
    citation: Citation | None = None
    measure: Measure
    targets: list[KpiTarget] = Field(default_factory=list)
    stale_after: Duration | None = None

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @field_validator("targets")
    @classmethod
    def _sorted_deadlines(cls, targets: list[KpiTarget], info: ValidationInfo) -> list[KpiTarget]:
        unit = info.data.get("unit")
        for target in targets:
            out_of_range = [v for v in target.bounds() if not 0.0 <= v <= 1.0]
            if unit == "ratio" and out_of_range:
                raise ValueError(f"target {target.phase!r}: a ratio lies between 0% and 100%, got "
                                 f"{out_of_range[0] * 100:g}%")
            if unit == "yes_no" and (out_of_range or any(v not in (0.0, 1.0) for v in target.bounds())):
                raise ValueError(f"target {target.phase!r}: a yes/no target is 1 (yes) or 0 (no)")
        return sorted(targets, key=lambda t: t.deadline)


class ManualSpec(StrictModel):
    file: str
    stale_after: Duration = 400 * 86400.0
    max_file_size: MaxFileSize = ByteSize(DEFAULT_MAX_BYTES)


def _check_query_url(url: str) -> str:
    try:
        return check_api_url(url).rstrip("/")
    except ValueError as exc:
        raise ValueError(f"{exc} (the Prometheus or VictoriaMetrics query API)") from None


class QueryServer(StrictModel):
    """A server speaking the Prometheus HTTP query API: Prometheus itself, or a central VictoriaMetrics."""

    url: Annotated[str, AfterValidator(_check_query_url)]
    auth: AuthSpec | None = None
    ca_file: str | None = None
    tls_verify: bool = True
    timeout: Duration = 60.0


class ReportIssuer(StrictModel):
    """The issuing body of the report (Nghị định 30/2020/NĐ-CP header)."""

    parent_vi: str = Field(description="The governing body, e.g. UBND TỈNH BẮC GIANG")
    name_vi: str = Field(description="The issuing body, e.g. SỞ THÔNG TIN VÀ TRUYỀN THÔNG")
    parent_en: str = ""
    name_en: str = ""
    abbreviation: str = Field("", description="For the number line «Số: .../BC-STTTT»")
    place: str = Field(description="For the place and date line «Bắc Giang, ngày ...»")


class ReportSpec(StrictModel):
    """The quarterly and annual report (``egov-agent report``)."""

    prometheus: QueryServer | None = None
    issuer: ReportIssuer | None = None
    plan_vi: str = Field("", description="The plan the report answers, e.g. «Kế hoạch số 59/KH-UBND ngày 29/3/2019»")
    plan_en: str = ""
    signer_vi: str = "GIÁM ĐỐC"
    signer_en: str = "DIRECTOR"
    recipients_vi: list[str] = Field(default_factory=list)
    recipients_en: list[str] = Field(default_factory=list)
    output_dir: str | None = Field(None, description="Where the scheduled report is written")
    history: int = Field(4, ge=1, le=12, description="Periods shown in each KPI's trend, this one included")
    simulated: bool = Field(False, description="The figures come from the lab's simulated province (marked so)")


class Config(StrictModel):
    province: ProvinceSpec
    levels: list[Annotated[str, Field(pattern=LABEL_NAME)]]
    units: list[UnitSpec]
    collectors: dict[str, CollectorSpec] = Field(default_factory=dict)
    targets: list[TargetSpec] = Field(default_factory=list)
    inventories: list[InventorySpec] = Field(default_factory=list)
    kpis: list[KpiSpec] = Field(default_factory=list)
    manual: ManualSpec | None = None
    reporting: ReportingSpec = Field(default_factory=ReportingSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    sources: list[dict[str, Any]] = Field(default_factory=list, description="Validated per kind: agent/sources")


# --- error formatting -------------------------------------------------------------------------
