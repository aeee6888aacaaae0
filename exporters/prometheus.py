"""Prometheus exposition of the agent's last results, KPIs and self-metrics.

A prometheus_client custom collector builds every family from a snapshot of the store, so a scrape
never waits for a probe. The rendered text is cached per store version (and for a few seconds at
most, since KPI targets and staleness depend on the clock), so many scrapers cost one rendering.
"""

from __future__ import annotations

import gzip
import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from agent.domain.periods import ReportingSpec
from agent.domain.version import __version__
from agent.engine.kpi import Evaluation, deadline_timestamp
from agent.engine.member_clock import MemberTime
from agent.engine.state import StateStatus
from agent.engine.store import DURATION_BUCKETS, CollectorStats, StoreSnapshot, TargetState
from agent.engine.units import UnitIndex
from collectors.api import Family
from exporters.apps import app_metrics
from exporters.snapshot import Snapshot, Snapshots
from exporters.target_text import TargetText
from exporters.text_format import Families, Only, fast_format

PREFIX = "egov_"
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class ConfigStatus:
    """What the last configuration (re)load did, for the self-metrics (replaced whole, never changed)."""

    province: str = ""
    source: str = ""
    success: bool = False
    success_time: float = 0.0
    load_time: float = 0.0


@dataclass(frozen=True)
class TargetLabels:
    collector: str
    values: tuple[str, ...]  # values for AgentView.target_label_names
    name: str = ""
    tags: tuple[str, ...] = ()


class AgentView:
    """Everything the exposition needs to know about the running configuration."""

    def __init__(self, level_names: list[str], targets: dict[str, TargetLabels],
                 families: dict[str, tuple[Family, ...]], timezone: str,
                 evaluate: Callable[[Mapping[str, TargetState]], Sequence[Evaluation]],
                 sources: Callable[[], list] | None = None, reporting: ReportingSpec | None = None,
                 units: UnitIndex | None = None,
                 member_times: Callable[[], dict[tuple[str, str], MemberTime]] | None = None,
                 down_after: dict[str, int] | None = None) -> None:
        self.target_label_names = ("collector", "target", "unit", "level", *level_names)
        self.level_names = tuple(level_names)
        self.targets = targets
        self.families = families
        self.timezone = timezone
        self._evaluate = evaluate
        self.sources = sources  # -> agent.sources.runner.SourceStatus per source (exporters/apps.py)
        self.reporting = reporting
        self.units = units
        self.member_times = member_times  # agent.member_clock.MemberClock.snapshot
        self.down_after = down_after or {}  # per collector, from its configuration

    @property
    def evaluate(self) -> Callable[[Mapping[str, TargetState]], Sequence[Evaluation]]:
        """The KPI engine's, of this configuration (exporters/snapshot.py calls it once per snapshot)."""
        return self._evaluate


def _fmt(value: float) -> str:
    return f"{value:g}"


class EgovCollector:
    """prometheus_client collector over the store's snapshots (whose view is swapped on reload)."""

    def __init__(self, snapshots: Snapshots[AgentView], status: Callable[[], ConfigStatus],
                 state: StateStatus | None = None) -> None:
        self.snapshots = snapshots  # shared with the status and unit pages (exporters/snapshot.py)
        self._status = status  # the agent's latest, read once per rendering
        self.state = state  # the state file's, when the agent keeps one

    def version(self) -> int:
        """The store's change counter: a rendering of an older one is out of date."""
        return self.snapshots.store.version

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics(*self.latest())

    def latest(self) -> tuple[Snapshot[AgentView], ConfigStatus]:
        """A new snapshot and the agent's status: what one rendering shows."""
        return self.snapshots.fresh(), self._status()

    def metrics(self, snap: Snapshot[AgentView], status: ConfigStatus) -> Iterator[Metric]:
        yield from self.head(snap, status)
        yield from self._target_metrics(snap.view, snap.states)
        yield from self.tail(snap, status)

    def head(self, snap: Snapshot[AgentView], status: ConfigStatus) -> Iterator[Metric]:
        """The families before the per-target ones (self-metrics)."""
        yield from self._self_metrics(snap.view, snap.stats, snap.store, status)

    def tail(self, snap: Snapshot[AgentView], status: ConfigStatus) -> Iterator[Metric]:
        """The families after the per-target ones (KPIs, their members, applications)."""
        view, evaluations = snap.view, snap.evaluations
        yield from self._kpi_metrics(view, evaluations, status.province)
        yield from self._member_metrics(view, evaluations, status.province)
        yield from app_metrics(status.province, evaluations, view)

    # -- self ------------------------------------------------------------------------------
    def _self_metrics(self, view: AgentView, stats: Mapping[str, CollectorStats],
                      frozen: StoreSnapshot, status: ConfigStatus) -> Iterator[Metric]:
        info = InfoMetricFamily(PREFIX + "build", "Version of the agent.")
        info.add_metric([], {"version": __version__, "python_version": platform.python_version()})
        yield info
        ok = GaugeMetricFamily(PREFIX + "config_last_reload_successful",
                               "1 if the last configuration load succeeded.", labels=["province"])
        ok.add_metric([status.province], 1.0 if status.success else 0.0)
        yield ok
        when = GaugeMetricFamily(PREFIX + "config_last_reload_success_timestamp_seconds",
                                 "When the configuration was last loaded successfully.", labels=["province"])
        when.add_metric([status.province], status.success_time)
        yield when
        if self.state is not None:
            yield from _state_metrics(self.state)

        kinds = sorted({t.collector for t in view.targets.values()} | set(stats))
        counts = GaugeMetricFamily(PREFIX + "collector_targets", "Targets configured per collector.",
                                   labels=["collector"])
        probes = CounterMetricFamily(PREFIX + "collector_probes", "Probes run.", labels=["collector"])
        errors = CounterMetricFamily(PREFIX + "collector_errors", "Failed probes by reason.",
                                     labels=["collector", "reason"])
        skipped = CounterMetricFamily(PREFIX + "collector_skipped_probes",
                                      "Scheduled probes dropped because the previous one overran its interval.",
                                      labels=["collector"])
        overrun = CounterMetricFamily(PREFIX + "collector_overrun",
                                      "Probes that found no answer in time while the agent's own loop was late: "
                                      "not counted as failures (the target keeps its state).", labels=["collector"])
        down_after = GaugeMetricFamily(PREFIX + "collector_down_after",
                                       "Failed probes in a row before a target that was up counts as down.",
                                       labels=["collector"])
        last = GaugeMetricFamily(PREFIX + "collector_last_success_timestamp_seconds",
                                 "When a probe of this collector last succeeded.", labels=["collector"])
        duration = HistogramMetricFamily(PREFIX + "collector_probe_duration_seconds",
                                         "Duration of each probe.", labels=["collector"])
        for kind in kinds:
            counts.add_metric([kind], float(sum(1 for t in view.targets.values() if t.collector == kind)))
            s = stats.get(kind, CollectorStats())
            probes.add_metric([kind], float(s.probes_total))
            for reason, n in sorted(s.errors.items()):
                errors.add_metric([kind, reason], float(n))
            skipped.add_metric([kind], float(s.skipped_total))
            overrun.add_metric([kind], float(s.overrun_total))
            if kind in view.down_after:
                down_after.add_metric([kind], float(view.down_after[kind]))
            last.add_metric([kind], s.last_success_time)
            cumulative, buckets = 0, []
            for bound, n in zip(DURATION_BUCKETS, s.bucket_counts, strict=True):
                cumulative += n
                buckets.append((_fmt(bound), float(cumulative)))
            buckets.append(("+Inf", float(s.probes_total)))
            duration.add_metric([kind], buckets, s.duration_sum)
        yield from (counts, probes, errors, skipped, overrun, down_after, last, duration)
        loop = frozen.loop_status
        lag = GaugeMetricFamily(PREFIX + "agent_loop_lag_seconds",
                                "The longest the agent's event loop woke late in the last 10 s (its own overload).")
        lag.add_metric([], loop.lag_seconds)
        overloaded = GaugeMetricFamily(PREFIX + "agent_overloaded",
                                       "1 while the agent cannot time its own probes: a probe overran or the loop "
                                       "stalled 0.5 s within the last minute, or it ran behind for half of the "
                                       "last 10 s.")
        overloaded.add_metric([], 1.0 if loop.overloaded else 0.0)
        pending = GaugeMetricFamily(PREFIX + "agent_first_round_pending_targets",
                                    "Targets not yet probed once since the start or the reload that added them: "
                                    "after /-/ready, the dead ones still waiting on their first timeout.")
        pending.add_metric([], float(frozen.first_round_pending))
        yield from (lag, overloaded, pending)
        if (pool := frozen.pool_status) is not None:
            workers = GaugeMetricFamily(PREFIX + "agent_workers", "Collector worker processes running (run --workers).",
                                        labels=["state"])
            workers.add_metric(["configured"], float(pool.workers))
            workers.add_metric(["running"], float(pool.running))
            restarts = CounterMetricFamily(PREFIX + "agent_worker_restarts", "Collector workers that died and were "
                                           "started again.")
            restarts.add_metric([], float(pool.restarts))
            yield from (workers, restarts)
        yield from _collector_own_metrics(stats)

    # -- targets -----------------------------------------------------------------------------
    def _target_metrics(self, view: AgentView, states: Mapping[str, TargetState]) -> Iterator[Metric]:
        names = list(view.target_label_names)
        info, up, down_since, dur, when, total, good, fails = target_families(names)
        own: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for target_id, labels in view.targets.items():
            info.add_metric([*labels.values, labels.name, "," + ",".join(labels.tags) + "," if labels.tags else ""],
                            1.0)
            state = states.get(target_id)
            if state is None or state.result is None:
                continue
            values = list(labels.values)
            up.add_metric(values, 1.0 if state.up else 0.0)
            if not state.up and state.down_since > 0.0:
                down_since.add_metric(values, state.down_since)
            dur.add_metric(values, state.last_duration)
            when.add_metric(values, state.last_probe_time)
            total.add_metric(values, float(state.probes_total))
            good.add_metric(values, float(state.up_total))
            for reason, n in sorted(state.failures.items()):
                fails.add_metric([*values, reason], float(n))
            if not state.result.samples:
                continue
            by_name = {f.name: f for f in view.families.get(labels.collector, ())}
            for sample in state.result.samples:
                family = by_name.get(sample.family)
                if family is None:
                    continue
                metric = own.get(family.name)
                if metric is None:
                    metric = own[family.name] = _family(family, names)
                metric.add_metric([*values, *sample.labels], sample.value)
        yield from (info, up, down_since, dur, when, total, good, fails)
        yield from own.values()

    # -- KPIs --------------------------------------------------------------------------------
    def _kpi_metrics(self, view: AgentView, evaluations: Iterable[Evaluation], province: str) -> Iterator[Metric]:
        # ``province`` labels every KPI series: one Prometheus may scrape several provinces' agents
        by_kpi = ["province", "kpi"]
        info = InfoMetricFamily(PREFIX + "kpi", "A KPI of the plan: titles, class and citation.",
                                labels=["province"])
        value = GaugeMetricFamily(PREFIX + "kpi_value", "The KPI's current value (ratios 0..1).", labels=by_kpi)
        num = GaugeMetricFamily(PREFIX + "kpi_numerator", "Numerator of a ratio KPI.", labels=by_kpi)
        den = GaugeMetricFamily(PREFIX + "kpi_denominator", "Denominator of a ratio KPI.", labels=by_kpi)
        measured = GaugeMetricFamily(PREFIX + "kpi_value_timestamp_seconds",
                                     "When the value was measured, or the date a manual figure refers to.",
                                     labels=by_kpi)
        stale = GaugeMetricFamily(PREFIX + "kpi_stale", "1 if the value is older than allowed.", labels=by_kpi)
        target = GaugeMetricFamily(PREFIX + "kpi_target", "The active target's threshold (ratios 0..1).",
                                   labels=[*by_kpi, "phase", "comparator", "origin", "bound"])
        target_info = InfoMetricFamily(PREFIX + "kpi_active_target",
                                       "The active target, with qualitative words verbatim.", labels=by_kpi)
        met = GaugeMetricFamily(PREFIX + "kpi_target_met", "1 if the KPI meets its active target.",
                                labels=[*by_kpi, "phase", "origin"])
        deadline = GaugeMetricFamily(PREFIX + "kpi_target_deadline_timestamp_seconds",
                                     "End of the active target's deadline day.", labels=[*by_kpi, "phase", "origin"])
        pending = GaugeMetricFamily(PREFIX + "kpi_pending", "1 while the KPI has no value, with the reason why.",
                                    labels=[*by_kpi, "reason"])
        approximate = GaugeMetricFamily(PREFIX + "kpi_value_approximate",
                                        "1 if the value puts monthly figures into a period that does not begin "
                                        "on the 1st (accepted with approximate_periods).", labels=by_kpi)
        group_names = ["province", "kpi", "group_level", "group"]
        gvalue = GaugeMetricFamily(PREFIX + "kpi_group_value", "The KPI within one unit (e.g. per district).",
                                   labels=group_names)
        gnum = GaugeMetricFamily(PREFIX + "kpi_group_numerator", "Numerator within one unit.", labels=group_names)
        gden = GaugeMetricFamily(PREFIX + "kpi_group_denominator", "Denominator within one unit.",
                                 labels=group_names)
        for ev in evaluations:
            kpi = ev.kpi
            c = kpi.citation
            info.add_metric([province], {
                "kpi": kpi.id, "class": kpi.kpi_class, "measure": kpi.measure.kind, "area": kpi.area,
                "unit": kpi.unit, "title_vi": kpi.title_vi, "title_en": kpi.title_en,
                "document": c.document if c else "", "document_date": c.date.isoformat() if c else "",
                "section": c.section if c else "", "quote": c.quote if c else "",
                "heading": (c.heading or "") if c else "", "source": ev.source,
                "inventory": ev.inventory.id if ev.inventory is not None and ev.inventory.declared else "",
            })
            if ev.pending_reason:
                pending.add_metric([province, kpi.id, ev.pending_reason], 1.0)
            if ev.value is not None:
                value.add_metric([province, kpi.id], ev.value)
                stale.add_metric([province, kpi.id], 1.0 if ev.stale else 0.0)
                if ev.approximate:
                    approximate.add_metric([province, kpi.id], 1.0)
            if ev.numerator is not None and ev.denominator is not None:
                num.add_metric([province, kpi.id], ev.numerator)
                den.add_metric([province, kpi.id], ev.denominator)
            if ev.measured_at is not None:
                measured.add_metric([province, kpi.id], ev.measured_at)
            for g in ev.groups:
                labels = [province, kpi.id, ev.group_level, g.group]
                gnum.add_metric(labels, g.numerator)
                gden.add_metric(labels, g.denominator)
                if g.denominator:
                    gvalue.add_metric(labels, g.numerator / g.denominator)
            active = ev.active
            if active is None:
                continue
            base = [province, kpi.id, active.phase, active.comparator, active.origin]
            if active.comparator == "range" and active.low is not None and active.high is not None:  # as validated
                target.add_metric([*base, "lower"], active.low)
                target.add_metric([*base, "upper"], active.high)
            elif active.value is not None:
                target.add_metric([*base, ""], active.value)
            target_info.add_metric([province, kpi.id], {"phase": active.phase, "comparator": active.comparator,
                                              "origin": active.origin, "text": active.text or ""})
            deadline.add_metric([province, kpi.id, active.phase, active.origin],
                                deadline_timestamp(active, view.timezone))
            if ev.met is not None:
                met.add_metric([province, kpi.id, active.phase, active.origin], 1.0 if ev.met else 0.0)
        yield from (info, value, num, den, measured, stale, pending, approximate, target, target_info, met,
                    deadline, gvalue, gnum, gden)

    def _member_metrics(self, view: AgentView, evaluations: Iterable[Evaluation], province: str) -> Iterator[Metric]:
        """Each coverage KPI's members: up now, and for how long (the counters of the period form)."""
        if view.units is None:
            return
        levels = [lv for lv in view.level_names if lv != "province"]
        names = ["province", "kpi", "unit", *levels]
        up = GaugeMetricFamily(PREFIX + "kpi_member_up", "1 if this unit of the KPI's inventory is covered now.",
                               labels=names)
        up_seconds = CounterMetricFamily(PREFIX + "kpi_member_up_seconds",
                                         "Seconds this unit was observed covered (increase() over a period).",
                                         labels=names)
        observed = CounterMetricFamily(PREFIX + "kpi_member_observed_seconds",
                                       "Seconds this unit was observed at all (the period form's denominator).",
                                       labels=names)
        threshold = GaugeMetricFamily(PREFIX + "kpi_connected_min_up_ratio",
                                      "Share of a period a unit must be up to count as connected in it "
                                      "(an operations threshold, not a plan target).",
                                      labels=["province", "kpi", "origin"])
        times = view.member_times() if view.member_times is not None else {}
        index = {lv: i for i, lv in enumerate(view.level_names)}
        default_min = view.reporting.connected_min_up if view.reporting is not None else 0.95
        for ev in evaluations:
            if not ev.members:
                continue
            measure = ev.kpi.measure
            timed = False
            for member in ev.members:
                hierarchy = view.units.hierarchy_values(member.unit)
                labels = [province, ev.kpi.id, member.unit, *(hierarchy[index[lv]] for lv in levels)]
                up.add_metric(labels, 1.0 if member.up else 0.0)
                spent = times.get((ev.kpi.id, member.unit))
                if spent is not None:
                    timed = True
                    up_seconds.add_metric(labels, spent.up_seconds)
                    observed.add_metric(labels, spent.observed_seconds)
            if timed:
                minimum = getattr(measure, "connected_min_up", None)
                threshold.add_metric([province, ev.kpi.id, "ops"], minimum if minimum is not None else default_min)
        yield from (up, up_seconds, observed, threshold)
        yield _unit_info(province, view.units)


def target_families(names: list[str]) -> list[GaugeMetricFamily | CounterMetricFamily]:
    """The fixed per-target families, empty, in the order /metrics has them (exporters/target_text.py too)."""
    info = GaugeMetricFamily(
        PREFIX + "target_info",
        "Configured target: its name and tags (as ',a,b,' so rules can match one tag with a regex).",
        labels=[*names, "name", "tags"])
    up = GaugeMetricFamily(PREFIX + "target_up",
                           "1 if the target is up: down only after its collector's down_after failed probes "
                           "in a row.", labels=names)
    down_since = GaugeMetricFamily(PREFIX + "target_down_since_timestamp_seconds",
                                   "While the target is down: when its run of failed probes began (alert "
                                   "texts say «since 09:12»).", labels=names)
    dur = GaugeMetricFamily(PREFIX + "target_probe_duration_seconds", "Duration of the last probe.",
                            labels=names)
    when = GaugeMetricFamily(PREFIX + "target_last_probe_timestamp_seconds",
                             "When the target was last probed.", labels=names)
    total = CounterMetricFamily(PREFIX + "target_probes", "Probes of the target.", labels=names)
    good = CounterMetricFamily(PREFIX + "target_probe_successes", "Successful probes of the target.",
                               labels=names)
    fails = CounterMetricFamily(PREFIX + "target_probe_failures", "Failed probes of the target by reason.",
                                labels=[*names, "reason"])
    return [info, up, down_since, dur, when, total, good, fails]


def _unit_info(province: str, units: UnitIndex) -> Metric:
    """Every unit's names and its parent's: alert texts name «Xã Đồng Sơn (huyện Yên Dũng)», not bg-yd-05."""
    info = GaugeMetricFamily(PREFIX + "unit_info", "A unit of the hierarchy: its names and its parent's (value 1).",
                             labels=["province", "unit", "level", "name_vi", "name_en", "parent", "parent_name_vi",
                                     "parent_name_en"])
    for unit in units.units.values():
        parent = units.units.get(unit.parent) if unit.parent else None
        info.add_metric([province, unit.id, unit.level, unit.name_vi, unit.name_en or unit.name_vi,
                         parent.id if parent else "", parent.name_vi if parent else "",
                         (parent.name_en or parent.name_vi) if parent else ""], 1.0)
    return info


def _state_metrics(state: StateStatus) -> Iterator[Metric]:
    ok = GaugeMetricFamily(PREFIX + "state_last_save_successful",
                           "1 if the last write of the state file (counters and availability history) succeeded.")
    ok.add_metric([], 1.0 if state.last_save_ok else 0.0)
    when = GaugeMetricFamily(PREFIX + "state_last_save_success_timestamp_seconds",
                             "When the state file was last written successfully (0: not yet).")
    when.add_metric([], state.last_save_time)
    restored = GaugeMetricFamily(PREFIX + "state_restored_targets",
                                 "Targets whose counters and history were restored from the state file at start.")
    restored.add_metric([], float(state.restored_targets))
    yield from (ok, when, restored)


def _collector_own_metrics(stats: Mapping[str, CollectorStats]) -> Iterator[Metric]:
    """Each collector's own counters (``Collector.self_families``), labelled by collector: one family
    per name, shared by collectors built on the same code (snmp and power)."""
    metrics: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
    for kind in sorted(stats):
        s = stats[kind]
        for family in s.self_families:
            if family.name not in metrics:
                cls = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
                metrics[family.name] = cls(PREFIX + family.name, family.help, labels=["collector", *family.labels])
        for sample in s.self_samples:
            if sample.family in metrics:
                metrics[sample.family].add_metric([kind, *sample.labels], sample.value)
    yield from metrics.values()


def _family(family: Family, target_labels: list[str]) -> CounterMetricFamily | GaugeMetricFamily:
    labels = [*target_labels, *family.labels]
    name = PREFIX + family.name
    if family.type == "counter":
        return CounterMetricFamily(name, family.help, labels=labels)
    return GaugeMetricFamily(name, family.help, labels=labels)


GZIP_LEVEL = 6  # what prometheus_client and Go's gzip use: the demo's 2 MB exposition to 8 % in ~30 ms, once per render


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header (RFC 9110 §12.5.3) admits gzip: listed, or ``*``, with q above 0."""
    allowed: dict[str, bool] = {}
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name.strip():
            allowed[name.strip().lower()] = q > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))


class _Registry(CollectorRegistry):
    """A registry that says which collectors it has, in their order (``Exposition.compose`` renders them)."""

    def __init__(self, auto_describe: bool = False) -> None:
        super().__init__(auto_describe=auto_describe)
        self.collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        self.collectors.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        self.collectors.remove(collector)


@dataclass
class _Rendering:
    """One rendering of /metrics in one format: the text, its gzip, or both.

    Prometheus always asks for gzip, so where no scraper asked for the text uncompressed in the last ten
    minutes only the gzip is kept (at Bắc Giang 0.3 MB instead of 4 MB more); a scrape without gzip then
    gets the text decompressed once, and from then on it is kept beside the gzip again."""

    key: tuple[int, int]
    body: bytes | None
    gzipped: bytes | None  # never both None


WANTED_FOR = 600.0  # seconds: a format (or its gzip, or its plain text) nobody asked for that long is not kept


class Exposition:
    """Renders /metrics in the negotiated format from a cache a scrape never has to wait for.

    Rendering 20,000 series through prometheus_client takes a few hundred milliseconds on this
    class of machine, and probes change the store many times a second. So once ``start`` is called
    a background thread re-renders each format that scrapers asked for, whenever the store changed,
    at most every ``max(min_interval, 10 × last render time)`` (a 10 % CPU ceiling for rendering),
    where a full render (every target formatted for the first time: after start or a reload, once per
    configuration) is not charged: at 40,000 targets its pause hid the first round for a minute.
    A scrape is served the latest rendering at once: data at most a couple of seconds old,
    never a scrape that waits on a render or a probe. Without ``start`` (``egov-agent once``)
    every call renders fresh data.
    """

    def __init__(self, collector: EgovCollector, min_interval: float = 1.0) -> None:
        self.collector = collector
        self.min_interval = min_interval
        self.registry = _Registry(auto_describe=False)
        self.registry.register(collector)
        self.process = ProcessCollector(registry=None)
        self.platform = PlatformCollector(registry=None)
        self.registry.register(self.process)
        self.registry.register(self.platform)
        # Each target's lines, kept between renderings: a rendering re-formats only the targets probed since.
        self.targets = TargetText(target_families, _family)
        self.families = Families()  # the other families' headers, kept
        self._render_lock = threading.Lock()
        self._cache: dict[str, _Rendering] = {}  # content type -> its latest rendering
        self._gzip_lock = threading.Lock()  # concurrent scrapes of a new rendering compress it once
        # (content type, "" | "gzip" | "plain") -> (encoder, when a scraper last asked for it)
        self._wanted: dict[tuple[str, str], tuple[Callable, float]] = {}
        self._stop = threading.Event()
        self._refreshing = threading.Lock()  # the refresh thread and a ready-time refresh take turns
        self._thread: threading.Thread | None = None
        self.last_render_seconds = 0.0
        self.pace_seconds = 0.0  # the render CPU the refresh thread's pause is charged for (10 x this)
        self._full = False  # the last compose formatted every target for the first time

    def _key(self) -> tuple[int, int]:
        return (self.collector.version(), int(time.monotonic() // CACHE_SECONDS))

    def _render(self, content_type: str, encoder: Callable, compress: bool = False) -> _Rendering:
        """The rendering for the store as it is; with ``compress`` its gzip is made before the rendering is
        served, so no scrape of a fresh rendering compresses it itself (30-60 ms for 20,000 series), and the
        text itself is kept only if a scraper asked for it uncompressed lately."""
        with self._render_lock:  # one rendering at a time; concurrent scrapes share it
            key = self._key()
            cached = self._cache.get(content_type)
            if cached is not None and cached.key == key:
                return cached
            # CPU time, not wall time: a starved process renders slowly by the clock, and 10 x that wall
            # time froze /metrics for minutes while the agent was overloaded (tests/test_overload.py).
            started = time.thread_time()
            snap, status = self.collector.latest()
            body = self.compose(snap, status, content_type, encoder)
            self.last_render_seconds = time.thread_time() - started
            self.pace_seconds = 0.0 if self._full else self.last_render_seconds
            compressed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if compress else None  # (zlib lets
            plain = compressed is None or (content_type, "plain") in self._wanted  # go of the GIL)
            rendering = _Rendering(key, body if plain else None, compressed)
            self._cache[content_type] = rendering
            return rendering

    def _latest(self, accept: str | None, variant: str) -> tuple[_Rendering, str]:
        """The rendering a scrape of ``accept`` is served (``variant``: "gzip" or "plain", what it asked for)."""
        encoder, content_type = choose_encoder(accept or "")
        now = time.monotonic()
        self._wanted[(content_type, "")] = (encoder, now)
        self._wanted[(content_type, variant)] = (encoder, now)
        cached = self._cache.get(content_type)
        if self._thread is not None and cached is not None:
            return cached, content_type
        return self._render(content_type, encoder), content_type

    def render(self, accept: str | None) -> tuple[bytes, str]:
        rendering, content_type = self._latest(accept, "plain")
        return self._plain(rendering), content_type

    def render_encoded(self, accept: str | None, accept_encoding: str | None) -> tuple[bytes, str, str | None]:
        """``render``, gzipped when the scraper accepts it: (body, content type, content encoding or None)."""
        if not accepts_gzip(accept_encoding):
            return (*self.render(accept), None)
        rendering, content_type = self._latest(accept, "gzip")
        return self._gzip(rendering), content_type, "gzip"

    def cached(self, accept: str | None, accept_encoding: str | None) -> tuple[bytes, str, str | None] | None:
        """``render_encoded``'s answer if it is ready-made (rendered, and gzipped when asked), else None:
        what the HTTP loop can send at once, without waiting for a worker thread or the GIL twice more."""
        if self._thread is None:
            return None
        encoder, content_type = choose_encoder(accept or "")
        cached = self._cache.get(content_type)
        if cached is None:
            return None
        gzipped = accepts_gzip(accept_encoding)
        now = time.monotonic()
        self._wanted[(content_type, "")] = (encoder, now)
        self._wanted[(content_type, "gzip" if gzipped else "plain")] = (encoder, now)
        if gzipped:
            return None if cached.gzipped is None else (cached.gzipped, content_type, "gzip")
        return None if cached.body is None else (cached.body, content_type, None)

    def _gzip(self, rendering: _Rendering) -> bytes:
        with self._gzip_lock:
            if rendering.gzipped is None:
                assert rendering.body is not None  # a rendering keeps its text unless it has its gzip
                rendering.gzipped = gzip.compress(rendering.body, compresslevel=GZIP_LEVEL, mtime=0)
            return rendering.gzipped

    @staticmethod
    def _plain(rendering: _Rendering) -> bytes:
        body = rendering.body
        if body is None:  # only its gzip was kept: the first plain scrape since pays for one decompression
            assert rendering.gzipped is not None
            body = rendering.body = gzip.decompress(rendering.gzipped)
        return body

    def compose(self, snap: Snapshot[AgentView], status: ConfigStatus, content_type: str, encoder: Callable,
                process: bool = True) -> bytes:
        """What ``encoder(self.registry)`` renders from ``snap``, with the per-target families from their
        cached lines (exporters/target_text.py), then every other collector of the registry in its order;
        ``process=False`` leaves out the process and platform families (whose values change by the call)."""
        self._full = False
        extra = [metric for c in self.registry.collectors if c is not self.collector
                 and (process or c not in (self.process, self.platform)) for metric in c.collect()]
        if not fast_format(content_type) or not self.targets.supports(snap.view):
            # a format or names the renderers here cannot vouch for: the library renders it all
            return bytes(encoder(Only([*self.collector.metrics(snap, status), *extra])))
        self.targets.update(snap.view, snap.states)
        self._full = self.targets.first_time > 0 and self.targets.first_time == self.targets.reformatted
        end = encoder(Only([]))  # OpenMetrics' "# EOF", or nothing
        return b"".join([self.families.render(self.collector.head(snap, status), content_type, encoder),
                         *self.targets.render(content_type, encoder),
                         self.families.render([*self.collector.tail(snap, status), *extra], content_type, encoder),
                         end])

    def invalidate(self) -> None:
        """Drop cached renderings (after a reload): the next scrape shows the new configuration."""
        with self._render_lock:
            self._cache.clear()

    def start(self) -> None:
        """Keep the renderings fresh in the background (the ``run`` command)."""
        self._thread = threading.Thread(target=self._refresh_loop, name="render", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def alive(self) -> bool:
        """False once the background renderer (``start``) has died: /metrics would serve old data for ever."""
        return self._thread is None or self._thread.is_alive()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(max(self.min_interval, 10 * self.pace_seconds)):
            self.refresh()

    def refresh(self) -> None:
        """Render every format a scraper asked for, now (the refresh thread, and once the agent turns ready:
        the first scrape after /-/ready shows the whole first round, not a rendering from before it)."""
        with self._refreshing:
            now = time.monotonic()
            for (content_type, variant), (encoder, asked) in list(self._wanted.items()):
                if now - asked > WANTED_FOR:  # nobody asked for this for ten minutes: stop rendering (or keeping) it
                    self._wanted.pop((content_type, variant), None)
                    if not variant:
                        self._cache.pop(content_type, None)
                    continue
                if not variant:
                    self._render(content_type, encoder, compress=(content_type, "gzip") in self._wanted)
