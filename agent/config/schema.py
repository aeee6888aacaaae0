"""The province configuration: schema (pydantic), cross-checks, and located error reports.

Everything province-specific lives here as data: the administrative hierarchy (any depth, any
level names), the monitored targets attached to units, collector settings, and the KPIs with their
citations and targets. ``load_config`` returns a validated :class:`Config` or raises
:class:`ConfigError` listing every problem at once, each with file, line and key.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ByteSize,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from agent.config.yamlsource import ConfigError, Document, Path_, Problem, format_path, load_document
from agent.domain.httpauth import AuthSpec, check_api_url
from agent.domain.models import Duration, Ident, Number, Share, StrictModel
from agent.domain.periods import PeriodKind, ReportingSpec
from agent.domain.secrets import RESOLVE_SECRETS
from agent.domain.steadyfile import DEFAULT_MAX_BYTES, MaxFileSize
from agent.sources import KINDS as SOURCE_KINDS
from agent.sources import source_class
from agent.sources.checks import as_mapping, check_sources
from collectors import REGISTRY

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

_SHOW_INPUT = {"date_from_datetime_parsing", "date_parsing", "date_type", "datetime_parsing",
               "int_parsing", "float_parsing", "int_type", "float_type", "bool_parsing", "literal_error",
               "string_pattern_mismatch", "enum"}


def _message(error: ErrorDetails) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind.startswith("date"):
        return f"expected a date (YYYY-MM-DD), got {value!r}"
    if kind in ("int_parsing", "float_parsing", "int_type", "float_type"):
        return f"expected a number, got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"expected lower-case letters, digits, '_' or '-', got {value!r}"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"unknown kind {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    message = error["msg"].removeprefix("Value error, ")
    if kind in _SHOW_INPUT and value is not None:
        message += f", got {value!r}"
    return message


def _real_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """Drop the tagged-union discriminators pydantic inserts into ``loc`` (they are not keys)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if (isinstance(node, dict) and part in node) or in_list:
            node = node[part]
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and node.get("kind") == part:
            continue
        else:
            out.append(part)
            node = None
    return tuple(out)


def _problems_from(exc: ValidationError, doc: Document, prefix: Path_ = ()) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path = _real_path(_at(doc.data, prefix), error["loc"])
        full = (*prefix, *path)
        file, line = doc.locate(full)
        problems.append(Problem(file, line, format_path(full), _message(error)))
    return problems


def _at(data: Any, path: Path_) -> Any:
    """The value at ``path``, or None where the raw data has no such key (a missing ``params:``)."""
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# --- cross-checks -----------------------------------------------------------------------------
# They read the raw data, tolerating wrong shapes (the schema reports those), so that reference
# errors are listed in the same run as schema errors instead of only after the schema passes.


def _dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def _walk_units(units: Any, path: Path_):
    for i, unit in _dicts(units):
        here = (*path, i)
        yield unit, here
        yield from _walk_units(unit.get("children"), (*here, "children"))


def _duplicates(items: list[tuple[Any, Path_]], what: str, doc: Document) -> list[Problem]:
    counts = Counter(key for key, _ in items)
    problems = []
    for key, path in items:
        if isinstance(key, str) and counts[key] > 1:
            file, line = doc.locate((*path, "id"))
            problems.append(Problem(file, line, format_path((*path, "id")), f"duplicate {what} id {key!r}"))
    return problems


def _cross_check(data: dict[str, Any], doc: Document) -> list[Problem]:
    problems: list[Problem] = []

    def bad(path: Path_, message: str) -> None:
        file, line = doc.locate(path)
        problems.append(Problem(file, line, format_path(path), message))

    levels = [lv for lv in data.get("levels") or [] if isinstance(lv, str)] if isinstance(data.get("levels"), list) \
        else []
    for i, level in enumerate(levels):
        if level in RESERVED_LABELS:
            bad(("levels", i), f"level name {level!r} is reserved for a label the agent sets")
    if len(set(levels)) != len(levels):
        bad(("levels",), "level names must be unique")

    units = list(_walk_units(data.get("units"), ("units",)))
    problems += _duplicates([(u.get("id"), p) for u, p in units], "unit", doc)
    unit_ids = {u.get("id") for u, _ in units}
    for unit, path in units:
        if isinstance(unit.get("level"), str) and levels and unit["level"] not in levels:
            bad((*path, "level"), f"unknown level {unit['level']!r}; levels are {levels}")

    collectors = as_mapping(data.get("collectors"))
    for name in collectors:
        if name not in REGISTRY:
            bad(("collectors", name), f"unknown collector {name!r}; known: {sorted(REGISTRY)}")

    targets = _dicts(data.get("targets"))
    problems += _duplicates([(t.get("id"), ("targets", i)) for i, t in targets], "target", doc)
    for i, target in targets:
        if isinstance(target.get("unit"), str) and target["unit"] not in unit_ids:
            bad(("targets", i, "unit"), f"unknown unit {target['unit']!r}")
        if isinstance(target.get("collector"), str) and target["collector"] not in collectors:
            bad(("targets", i, "collector"), f"collector {target['collector']!r} is not configured under collectors")

    unit_levels = {u.get("id"): u.get("level") for u, _ in units}
    inventories = _check_inventories(data, levels, unit_levels, units, bad, doc)
    problems += _duplicates([(inv.get("id"), ("inventories", i)) for i, inv in _dicts(data.get("inventories"))],
                            "inventory", doc)

    kpis = _dicts(data.get("kpis"))
    problems += _duplicates([(k.get("id"), ("kpis", i)) for i, k in kpis], "KPI", doc)
    for i, kpi in kpis:
        here = ("kpis", i)
        measure = as_mapping(kpi.get("measure"))
        if isinstance(measure.get("inventory"), str) and measure["inventory"] not in inventories:
            known = ", ".join(sorted(inventories)) or "none declared"
            bad((*here, "measure", "inventory"), f"unknown inventory {measure['inventory']!r} (inventories: {known})")
        _check_class(kpi, measure, here, bad)
        select = as_mapping(measure.get("select"))
        where = (*here, "measure", "select")
        if isinstance(select.get("collector"), str) and select["collector"] not in collectors:
            bad((*where, "collector"), f"collector {select['collector']!r} is not configured under collectors")
        if isinstance(select.get("level"), str) and select["level"] not in levels:
            bad((*where, "level"), f"unknown level {select['level']!r}")
        if isinstance(select.get("under"), str) and select["under"] not in unit_ids:
            bad((*where, "under"), f"unknown unit {select['under']!r}")
        if isinstance(measure.get("group_by"), str) and measure["group_by"] not in levels:
            bad((*here, "measure", "group_by"), f"unknown level {measure['group_by']!r}")
        targets_of_kpi = _dicts(kpi.get("targets"))
        if any(t.get("origin", "plan") == "plan" for _, t in targets_of_kpi) and not kpi.get("citation"):
            bad(here, "a KPI with plan targets needs a citation")
    check_sources(data, levels, unit_ids, bad)
    return problems


def _check_inventories(data: dict[str, Any], levels: list[str], unit_levels: dict[Any, Any],
                       units: list[tuple[dict[str, Any], Path_]], bad, doc: Document) -> set[str]:
    """References of each inventory, and its size against the plan's own count (``expected``)."""
    parents: dict[Any, Any] = {}
    for unit, _ in units:
        for child in unit.get("children") or []:
            if isinstance(child, dict):
                parents[child.get("id")] = unit.get("id")

    def is_under(uid: Any, ancestor: Any) -> bool:
        seen = 0
        while uid is not None and seen < 100:
            if uid == ancestor:
                return True
            uid, seen = parents.get(uid), seen + 1
        return False

    ids: set[str] = set()
    for i, inv in _dicts(data.get("inventories")):
        here: Path_ = ("inventories", i)
        if isinstance(inv.get("id"), str):
            ids.add(inv["id"])
        inv_levels = [lv for lv in inv.get("levels") or [] if isinstance(lv, str)] \
            if isinstance(inv.get("levels"), list) else []
        for j, level in enumerate(inv_levels):
            if level not in levels:
                bad((*here, "levels", j), f"unknown level {level!r}; levels are {levels}")
        under = inv.get("under")
        if isinstance(under, str) and under not in unit_levels:
            bad((*here, "under"), f"unknown unit {under!r}")
        listed = [u for u in inv.get("units") or [] if isinstance(u, str)] if isinstance(inv.get("units"), list) \
            else []
        for j, uid in enumerate(listed):
            if uid not in unit_levels:
                bad((*here, "units", j), f"unknown unit {uid!r}")
        members = {uid for uid, level in unit_levels.items()
                   if level in inv_levels and (not isinstance(under, str) or is_under(uid, under))}
        members |= {uid for uid in listed if uid in unit_levels}
        for j, exclusion in _dicts(inv.get("exclude")):
            excluded = exclusion.get("unit")
            if isinstance(excluded, str) and excluded not in members:
                bad((*here, "exclude", j, "unit"), f"unit {excluded!r} is not a member of this inventory")
            members.discard(excluded)
        expected = inv.get("expected")
        if isinstance(expected, int) and not isinstance(expected, bool) and len(members) != expected:
            bad((*here, "expected"), f"the inventory has {len(members)} units, the plan counts {expected}: "
                                     f"add or exclude units (with the plan's reason) until they agree")
    return ids


_CLASS_WORDS = {"direct": "probes infrastructure", "from_system": "reads an application system",
                "manual": "imports figures a person supplies"}


def _check_class(kpi: dict[str, Any], measure: dict[str, Any], here: Path_, bad) -> None:
    """The KPI's declared class says where its numbers come from: the measure must agree."""
    kpi_class = kpi.get("class")
    kind = measure.get("kind")
    if kpi_class not in _CLASS_WORDS or not isinstance(kind, str):
        return
    if kind in ("ratio", "value"):
        source = measure.get("source", "manual")
        actual = "manual" if source == "manual" else "from_system"
    elif kind == "coverage" and measure.get("source") is not None:
        actual = "from_system"
    else:
        actual = "direct"
    if actual != kpi_class:
        reads = {"manual": "the manual data file (source: manual)", "from_system": f"source {measure.get('source')!r}",
                 "direct": f"probes ({kind} of targets)"}[actual]
        bad((*here, "class"), f"class {kpi_class} {_CLASS_WORDS[kpi_class]}, but the measure reads {reads}: "
                              f"make the class {actual} or change the measure")


def _validate_collectors(data: dict[str, Any], doc: Document) -> tuple[dict[str, Any], dict[str, Any], list[Problem]]:
    """Validate each collector's settings and each target's params with that collector's own models."""
    problems: list[Problem] = []
    settings: dict[str, Any] = {}
    params: dict[str, Any] = {}
    collectors = as_mapping(data.get("collectors"))
    for name, spec in collectors.items():
        if name not in REGISTRY:
            continue
        if (undeclared := REGISTRY.undeclared_hosts(name)) is not None:  # fail closed: the allowlist could not see it
            file, line = doc.locate(("collectors", name))
            problems.append(Problem(file, line, format_path(("collectors", name)), undeclared))
            continue
        raw = spec.get("settings", {}) if isinstance(spec, dict) else {}
        try:
            settings[name] = REGISTRY.models(name)[0].model_validate(raw)
        except ValidationError as exc:
            problems += _problems_from(exc, doc, ("collectors", name, "settings"))
    for i, target in _dicts(data.get("targets")):
        kind = target.get("collector")
        if not isinstance(kind, str) or kind not in REGISTRY:
            continue
        try:
            params[str(target.get("id"))] = REGISTRY.models(kind)[1].model_validate(target.get("params") or {})
        except ValidationError as exc:
            problems += _problems_from(exc, doc, ("targets", i, "params"))
    return settings, params, problems


def _validate_sources(data: dict[str, Any], doc: Document) -> tuple[dict[str, Any], list[Problem]]:
    """Validate each source with its kind's own model (agent/sources/<kind>.py)."""
    problems: list[Problem] = []
    specs: dict[str, Any] = {}
    for i, raw in _dicts(data.get("sources")):
        if raw.get("kind") not in SOURCE_KINDS:
            continue  # the cross-check reports it
        try:
            spec = source_class(raw["kind"]).Spec.model_validate(raw)
        except ValidationError as exc:
            problems += _problems_from(exc, doc, ("sources", i))
            continue
        specs.setdefault(spec.id, spec)
    return specs, problems


class LoadedConfig:
    """A validated configuration plus the typed collector settings and target params."""

    def __init__(self, config: Config, source: Path, settings: dict[str, Any], params: dict[str, Any],
                 source_specs: dict[str, Any] | None = None, warnings: list[Problem] | None = None) -> None:
        self.config = config
        self.source = source
        self.collector_settings = settings
        self.target_params = params
        self.source_specs = source_specs or {}  # source id -> its kind's Spec (agent/sources)
        self.warnings = warnings or []  # valid, but worth an operator's attention (check-config prints them)

    def resolve_path(self, name: str) -> Path:
        """A file named in the configuration, relative to the configuration file."""
        path = Path(name)
        return path if path.is_absolute() else self.source.parent / path


def load_config(path: str | Path, resolve_secrets: bool = True, load_kinds: bool = True) -> LoadedConfig:
    """Load and validate; with ``resolve_secrets=False`` secret references are checked for form only.

    ``load_kinds`` imports the collector kinds the file names, to run them; without it (``check-config``)
    targets are validated with the kinds' light models, and pysnmp, pycurl or httpx are not loaded.
    """
    token = RESOLVE_SECRETS.set(resolve_secrets)
    try:
        return _load_config(path, load_kinds)
    finally:
        RESOLVE_SECRETS.reset(token)


def _load_config(path: str | Path, load_kinds: bool) -> LoadedConfig:
    doc = load_document(path)
    if load_kinds and isinstance(doc.data.get("collectors"), dict):
        REGISTRY.load(doc.data["collectors"])
    problems: list[Problem] = []
    try:
        config = Config.model_validate(doc.data)
    except ValidationError as exc:
        problems += _problems_from(exc, doc)
    problems += _cross_check(doc.data, doc)
    settings, params, more = _validate_collectors(doc.data, doc)
    problems += more
    source_specs, more = _validate_sources(doc.data, doc)
    problems += more
    if problems:
        problems.sort(key=lambda p: (p.file, p.line or 0))
        raise ConfigError(problems)
    return LoadedConfig(config, Path(path).resolve(), settings, params, source_specs, _warnings(config, doc))


def _warnings(config: Config, doc: Document) -> list[Problem]:
    """What validates but will not yield a plan figure as configured: said once, at check-config."""
    out: list[Problem] = []
    inventories = {inv.id: (i, inv) for i, inv in enumerate(config.inventories)}

    def warn(path: Path_, message: str) -> None:
        file, line = doc.locate(path)
        out.append(Problem(file, line, format_path(path), message))

    for i, kpi in enumerate(config.kpis):
        measure = kpi.measure
        name = getattr(measure, "inventory", None)
        if name in inventories and not inventories[name][1].complete:
            warn(("kpis", i, "measure", "inventory"),
                 f"KPI {kpi.id} stays pending: inventory {name} is incomplete "
                 f"({inventories[name][1].incomplete_reason})")
    for i, inv in inventories.values():
        for j, exclusion in enumerate(inv.exclude):
            if exclusion.assumed:
                warn(("inventories", i, "exclude", j), f"inventory {inv.id} leaves out {exclusion.unit} by "
                                                       f"assumption, not by the plan's words: {exclusion.reason}")
    return out


__all__ = ["Config", "ConfigError", "KpiSpec", "KpiTarget", "LoadedConfig", "Problem", "load_config"]
