"""Each KPI over a report window, computed from history the way its plan sentence means.

- A coverage over units by probes («230/230 xã kết nối») is the state that held over the period: a
  unit counts as connected when it was up at least ``connected_min_up`` of the time it was observed
  (``increase()`` of the agent's member counters over the window, so restarts do not matter), over
  the inventory from the configuration; the state at the cut-off instant is given beside it. The
  units that were not connected are listed with their down time, per district.
- A share of targets (the portals up) is the share whose availability over the period reached the
  same threshold; an availability is good probes over all probes in the window.
- Source-backed KPIs are the period's figures as the agent computed them from the systems (the last
  value it exported while the period was current); a half-year adds its two quarters.
- Manual KPIs are the last figure with its date and source.
- A count is its value at the cut-off.

Nothing is ever filled in: a KPI with no data in the window is a data gap, with the reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from agent.config.loading import LoadedConfig
from agent.config.schema import AvailabilityMeasure, CoverageMeasure, KpiSpec
from agent.engine.kpi import KpiEngine, active_target, is_met
from agent.engine.units import UnitIndex
from agent.sources.base import mask_url
from exporters.report.model import MET, NO_DATA, NOT_JUDGED, NOT_MET, Figure, GroupRow, QueryRow, Report, TargetView
from exporters.report.promql import LoggedQuery, QueryClient
from exporters.report.windows import Window, history, previous

CUTOFF_LOOKBACK = "15m"  # a value counts as the state at the cut-off if sampled this close before it
OBSERVED_ENOUGH = 0.9  # below this share of the window observed, a coverage figure carries a note
INTERRUPTION = 3600.0  # a connected unit down this long in the period is listed as interrupted
MAX_INTERRUPTED = 50
TILE = "1h"  # the windows begin and end on whole hours (days in the province's time zone)


@dataclass
class WindowData:
    """The answers for one window, keyed for the figures."""

    window: Window
    at: float
    complete: bool
    seconds: float
    member_up: dict[tuple[str, str], float] = field(default_factory=dict)  # (kpi, unit) -> seconds
    member_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    member_now: dict[tuple[str, str], float] = field(default_factory=dict)
    probes: dict[str, float] = field(default_factory=dict)  # target -> probes in the window
    successes: dict[str, float] = field(default_factory=dict)
    numerator: dict[str, float] = field(default_factory=dict)  # at the cut-off, per KPI
    denominator: dict[str, float] = field(default_factory=dict)
    value: dict[str, float] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    stale: dict[str, float] = field(default_factory=dict)
    stamp: dict[str, float] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    period: dict[str, list[tuple[float | None, float | None, float | None, bool]]] = field(default_factory=dict)
    groups: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # kpi -> group -> [num, den]
    ids: dict[str, str] = field(default_factory=dict)  # what -> query id


def _seconds(window: float) -> str:
    return f"{max(1, round(window))}s"


def _increase(metric: str, selector: str, span: str, by: str) -> str:
    """A counter's increase over the window as the sum of its hourly increases: a subquery loads an
    hour of samples per step, so a quarter of 30 s samples of every target stays under Prometheus's
    query.max-samples (50 million), which one ``increase(...[92d])`` over 1,200 series would pass;
    counter resets are handled within each hour as ``increase`` always does."""
    return f"sum by ({by}) (sum_over_time(increase({metric}{{{selector}}}[{TILE}])[{span}:{TILE}]))"


class ReportBuilder:
    def __init__(self, loaded: LoadedConfig, client: QueryClient, now: float | None = None) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.client = client
        self.now = time.time() if now is None else now
        self.units = UnitIndex(self.config)
        self.engine = KpiEngine(self.config, self.units, None)
        self.code = self.config.province.code
        self.tz = self.config.province.timezone

    # -- queries ---------------------------------------------------------------------------------
    def fetch(self, window: Window) -> WindowData:
        at, complete = window.evaluated_at(self.tz, self.now)
        if not complete:
            at = at - at % 3600  # to date: to the last whole hour, where the hourly steps end
        start = window.bounds(self.tz)[0]
        if at <= start:
            raise ValueError(f"the period {window.name} has not begun yet")
        data = WindowData(window, at, complete, at - start)
        span, p = _seconds(at - start), f'province="{self.code}"'

        def ask(what: str, expr: str) -> LoggedQuery:
            result = self.client.query(expr, at)
            data.ids[what] = result.id
            return result

        for s in ask("member_up", _increase("egov_kpi_member_up_seconds_total", p, span, "kpi, unit")).series:
            data.member_up[(s.labels.get("kpi", ""), s.labels.get("unit", ""))] = s.value
        for s in ask("member_seen", _increase("egov_kpi_member_observed_seconds_total", p, span, "kpi, unit")).series:
            data.member_seen[(s.labels.get("kpi", ""), s.labels.get("unit", ""))] = s.value
        for s in ask("member_now", f"last_over_time(egov_kpi_member_up{{{p}}}[{CUTOFF_LOOKBACK}])").series:
            data.member_now[(s.labels.get("kpi", ""), s.labels.get("unit", ""))] = s.value
        for s in ask("probes", _increase("egov_target_probes_total", p, span, "target")).series:
            data.probes[s.labels.get("target", "")] = s.value
        for s in ask("successes", _increase("egov_target_probe_successes_total", p, span, "target")).series:
            data.successes[s.labels.get("target", "")] = s.value
        for what, into in (("numerator", data.numerator), ("denominator", data.denominator), ("value", data.value)):
            expr = f"sum by (kpi) (last_over_time(egov_kpi_{what}{{{p}}}[{CUTOFF_LOOKBACK}]))"
            for s in ask(what, expr).series:
                into[s.labels.get("kpi", "")] = s.value
        for s in ask("pending", f"max by (kpi, reason) (last_over_time(egov_kpi_pending{{{p}}}[{CUTOFF_LOOKBACK}]))"
                     ).series:
            data.pending[s.labels.get("kpi", "")] = s.labels.get("reason", "")
        for s in ask("stale", f"max by (kpi) (last_over_time(egov_kpi_stale{{{p}}}[{CUTOFF_LOOKBACK}]))").series:
            data.stale[s.labels.get("kpi", "")] = s.value
        for s in ask("stamp", f"max by (kpi) (last_over_time(egov_kpi_value_timestamp_seconds{{{p}}}[{span}]))"
                     ).series:
            data.stamp[s.labels.get("kpi", "")] = s.value
        for s in ask("info", f"max by (kpi, source) (last_over_time(egov_kpi_info{{{p}}}[{span}]))").series:
            data.source[s.labels.get("kpi", "")] = s.labels.get("source", "")
        # The per-unit breakdown the agent exported last in the window, for its headline period; read a
        # second before the end, so that a sample taken at the boundary (the next period's) is not it.
        for what, index in (("numerator", 0), ("denominator", 1)):
            expr = f"max by (kpi, group_level, group) (last_over_time(egov_kpi_group_{what}{{{p}}}[{span}]))"
            result = self.client.query(expr, at - 1)
            data.ids[f"group_{what}"] = result.id
            for s in result.series:
                pair = data.groups.setdefault(s.labels.get("kpi", ""), {}).setdefault(s.labels.get("group", ""),
                                                                                     [0.0, 0.0])
                pair[index] = s.value
        for kind, first in self._agent_periods(window):
            sel = f'{p}, period="{kind}", period_start="{first.isoformat()}"'
            parts: dict[str, dict[str, float]] = {}
            approximate: dict[str, bool] = defaultdict(bool)
            for what in ("numerator", "denominator", "value"):
                expr = f"sum by (kpi, approximate) (last_over_time(egov_kpi_period_{what}{{{sel}}}[{span}]))"
                for s in ask(f"period_{what}_{first.isoformat()}", expr).series:
                    kpi = s.labels.get("kpi", "")
                    parts.setdefault(kpi, {})[what] = s.value
                    approximate[kpi] |= s.labels.get("approximate") == "true"
            for kpi, got in parts.items():
                data.period.setdefault(kpi, []).append(
                    (got.get("value"), got.get("numerator"), got.get("denominator"), approximate[kpi]))
        return data

    @staticmethod
    def _agent_periods(window: Window) -> list[tuple[str, dt.date]]:
        """The periods the agent exported figures for that make up this window."""
        if window.kind in ("quarter", "year"):
            return [(window.kind, window.start)]
        if window.kind == "half":
            return [("quarter", q.start) for q in window.quarters]
        return []

    # -- figures ---------------------------------------------------------------------------------
    def build(self, window: Window) -> Report:
        windows = history(window, self.config.reporting, self.config.report.history)
        before = previous(window, self.config.reporting)
        fetched = {w.name: self.fetch(w) for w in windows}
        if before.name not in fetched:
            with contextlib.suppress(ValueError):
                fetched[before.name] = self.fetch(before)
        data = fetched[window.name]
        figures = []
        for kpi in self.config.kpis:
            figure = self.figure(kpi, data)
            values = {name: figure.value if name == window.name else self.figure(kpi, other).value
                      for name, other in fetched.items()}  # each window's figure once: trend and change
            figure.previous_value = values.get(before.name)
            if figure.value is not None and figure.previous_value is not None:
                figure.change = figure.value - figure.previous_value
            figure.history = [(w.name, values[w.name]) for w in windows]
            figures.append(figure)
        report_spec = self.config.report
        issuer = report_spec.issuer
        province = self.config.province
        return Report(
            province.code, province.name_vi, province.name_en, self.tz, window.name, window.kind, window.number,
            window.start, window.last_day, data.complete, data.at, self.now, before.name,
            [w.name for w in windows], mask_url(self.client.url), self.config.reporting.connected_min_up,
            report_spec.simulated,
            {"parent_vi": issuer.parent_vi if issuer else f"UBND {province.name_vi.upper()}",
             "name_vi": issuer.name_vi if issuer else "SỞ THÔNG TIN VÀ TRUYỀN THÔNG",
             "parent_en": issuer.parent_en if issuer else f"{province.name_en} People's Committee",
             "name_en": issuer.name_en if issuer else "Department of Information and Communications",
             "abbreviation": issuer.abbreviation if issuer else "STTTT",
             "place": issuer.place if issuer else province.name_vi.removeprefix("Tỉnh ").removeprefix("Thành phố ")},
            report_spec.plan_vi, report_spec.plan_en, report_spec.signer_vi, report_spec.signer_en,
            list(report_spec.recipients_vi), list(report_spec.recipients_en), figures,
            [QueryRow(q.id, q.expr, q.at, len(q.series), [{"labels": s.labels, "value": s.value} for s in q.series])
             for q in self.client.log])

    def figure(self, kpi: KpiSpec, data: WindowData) -> Figure:
        target = active_target(kpi.targets, data.window.last_day)
        c = kpi.citation
        figure = Figure(
            kpi.id, kpi.title_vi, kpi.title_en, kpi.area, kpi.kpi_class, kpi.measure.kind, kpi.unit,
            target.origin if target is not None else "plan",
            TargetView(target.phase, target.deadline, target.comparator, target.value, target.low, target.high,
                       target.text or "", target.origin, target.deadline < data.window.last_day)
            if target is not None else None,
            document=c.document if c else "", document_date=c.date if c else None, section=c.section if c else "",
            heading=(c.heading or "") if c else "", quote=c.quote if c else "")
        measure = kpi.measure
        if isinstance(measure, CoverageMeasure) and measure.over_units and not measure.from_source:
            self._coverage_of_units(figure, kpi, measure, data)
        elif isinstance(measure, CoverageMeasure) and not measure.from_source:
            self._share_of_targets(figure, kpi, measure, data)
        elif measure.kind == "availability":
            self._availability(figure, kpi, data)
        elif measure.kind == "count":
            self._cutoff(figure, kpi, data)
            figure.value = figure.cutoff_value
            figure.how = "value at the cut-off"
        elif getattr(measure, "source", "manual") == "manual":
            self._manual(figure, kpi, data)
        else:
            self._from_source(figure, kpi, data)
        reason = data.pending.get(kpi.id)
        if figure.value is None and reason and not figure.gaps:
            figure.gaps.append(f"pending|{reason}")
        if figure.value is None and not figure.gaps:
            figure.gaps.append("no_data")
        figure.verdict = self._verdict(figure, target)
        return figure

    @staticmethod
    def _verdict(figure: Figure, target) -> str:
        if figure.value is None:
            return NO_DATA
        if target is None or target.comparator == "qualitative":
            return NOT_JUDGED
        return MET if is_met(target, figure.value) else NOT_MET

    def _cutoff(self, figure: Figure, kpi: KpiSpec, data: WindowData) -> None:
        figure.queries += [data.ids["numerator"], data.ids["denominator"], data.ids["value"]]
        num, den = data.numerator.get(kpi.id), data.denominator.get(kpi.id)
        if num is not None and den is not None:
            figure.cutoff_numerator, figure.cutoff_denominator = num, den
            figure.cutoff_value = num / den if den else None
        else:
            figure.cutoff_value = data.value.get(kpi.id)

    def _minimum(self, measure: CoverageMeasure) -> float:
        minimum = measure.connected_min_up
        return minimum if minimum is not None else self.config.reporting.connected_min_up

    def _coverage_of_units(self, figure: Figure, kpi: KpiSpec, measure: CoverageMeasure, data: WindowData) -> None:
        from exporters.report.model import UnitRow

        inventory = self.engine.inventory_of(measure)
        assert inventory is not None
        figure.queries += [data.ids["member_up"], data.ids["member_seen"], data.ids["member_now"]]
        minimum = self._minimum(measure)
        figure.how = (f"units up at least {minimum:.0%} of the period (an ops threshold), over the "
                      f"{len(inventory.members)} units of the inventory")
        if not inventory.complete:
            figure.gaps.append(f"inventory_incomplete|{inventory.incomplete_reason}")
            return
        seen_any = any((kpi.id, u) in data.member_seen for u in inventory.members)
        if not seen_any:
            figure.gaps.append("no_member_counters")
            return
        rows, observed = [], 0.0
        group_level = measure.group_by or ("district" if "district" in self.units.levels else "")
        for unit in inventory.members:
            up = data.member_up.get((kpi.id, unit))
            seen = data.member_seen.get((kpi.id, unit))
            share = up / seen if up is not None and seen else None
            observed += min(seen or 0.0, data.seconds)
            group = (self.units.ancestor_at(unit, group_level) or "") if group_level else ""
            rows.append(UnitRow(unit, self.units.units[unit].name_vi, group,
                                share is not None and share >= minimum - 1e-9, share,
                                max(0.0, (seen or 0.0) - (up or 0.0)), max(0.0, data.seconds - (seen or 0.0)),
                                self.units.units[group].name_vi if group in self.units.units else group))
        connected = sum(r.connected for r in rows)
        figure.numerator, figure.denominator = float(connected), float(len(rows))
        figure.value = connected / len(rows) if rows else None
        figure.below = sorted((r for r in rows if not r.connected),
                              key=lambda r: (-(r.down_seconds + r.unobserved_seconds), r.unit))
        figure.interrupted = sorted((r for r in rows if r.connected and r.down_seconds >= INTERRUPTION),
                                    key=lambda r: (-r.down_seconds, r.unit))[:MAX_INTERRUPTED]
        share_observed = observed / (data.seconds * len(rows)) if rows else 0.0
        if share_observed < OBSERVED_ENOUGH:
            figure.notes.append(f"observed|{share_observed:.4f}")
        now_up = [data.member_now.get((kpi.id, u)) for u in inventory.members]
        if any(v is not None for v in now_up):
            figure.cutoff_numerator = float(sum(1 for v in now_up if v == 1))
            figure.cutoff_denominator = float(len(rows))
            figure.cutoff_value = figure.cutoff_numerator / figure.cutoff_denominator
        if group_level:
            figure.group_level = group_level
            groups: dict[str, list[int]] = {}
            for r in rows:
                counts = groups.setdefault(r.group, [0, 0])
                counts[0] += r.connected
                counts[1] += 1
            figure.groups = [GroupRow(g, self.units.units[g].name_vi if g in self.units.units else g,
                                      float(n), float(d)) for g, (n, d) in sorted(groups.items()) if g]

    def _name(self, unit: str | None) -> str:
        return self.units.units[unit].name_vi if unit and unit in self.units.units else (unit or "")

    def _target_availability(self, target_id: str, data: WindowData) -> float | None:
        probes = data.probes.get(target_id)
        return data.successes.get(target_id, 0.0) / probes if probes else None

    def _share_of_targets(self, figure: Figure, kpi: KpiSpec, measure: CoverageMeasure, data: WindowData) -> None:
        from exporters.report.model import UnitRow

        selected = self.engine.select(measure.select)
        figure.queries += [data.ids["probes"], data.ids["successes"]]
        minimum = self._minimum(measure)
        figure.how = f"targets available at least {minimum:.0%} of the period (an ops threshold)"
        self._cutoff(figure, kpi, data)
        shares = {t.id: self._target_availability(t.id, data) for t in selected}
        if not selected or all(v is None for v in shares.values()):
            figure.gaps.append("no_probe_counters")
            return
        good = [t for t in selected if (share := shares[t.id]) is not None and share >= minimum - 1e-9]
        figure.numerator, figure.denominator = float(len(good)), float(len(selected))
        figure.value = len(good) / len(selected)
        figure.below = [UnitRow(t.id, t.name or t.id, t.unit, False, shares[t.id],
                                (1 - (shares[t.id] or 0.0)) * data.seconds if shares[t.id] is not None else 0.0,
                                0.0 if shares[t.id] is not None else data.seconds, self._name(t.unit))
                        for t in selected if t not in good]

    def _availability(self, figure: Figure, kpi: KpiSpec, data: WindowData) -> None:
        from exporters.report.model import UnitRow

        assert isinstance(kpi.measure, AvailabilityMeasure)
        selected = self.engine.select(kpi.measure.select)
        figure.queries += [data.ids["probes"], data.ids["successes"]]
        figure.how = "good probes / all probes in the period"
        probes = sum(data.probes.get(t.id, 0.0) for t in selected)
        if not probes:
            figure.gaps.append("no_probe_counters")
            return
        good = sum(data.successes.get(t.id, 0.0) for t in selected)
        figure.numerator, figure.denominator, figure.value = good, probes, good / probes
        worst = []
        for t in selected:
            share = self._target_availability(t.id, data)
            if share is not None and share < 1.0:
                worst.append(UnitRow(t.id, t.name or t.id, t.unit, False, share, (1 - share) * data.seconds, 0.0,
                                     self._name(t.unit)))
        figure.interrupted = sorted(worst, key=lambda r: (r.up_share or 0.0, r.unit))[:MAX_INTERRUPTED]

    def _manual(self, figure: Figure, kpi: KpiSpec, data: WindowData) -> None:
        figure.queries += [data.ids["value"], data.ids["numerator"], data.ids["denominator"], data.ids["stamp"],
                           data.ids["info"], data.ids["pending"]]
        figure.how = "the last figure supplied, with its date and source"
        figure.source = data.source.get(kpi.id, "")
        value = data.value.get(kpi.id)
        if value is None:
            reason = data.pending.get(kpi.id)
            figure.gaps.append(f"pending|{reason}" if reason else "no_figure_supplied")
            return
        figure.value = value
        figure.numerator, figure.denominator = data.numerator.get(kpi.id), data.denominator.get(kpi.id)
        stamp = data.stamp.get(kpi.id)
        if stamp is not None:
            figure.as_of = dt.datetime.fromtimestamp(stamp, ZoneInfo(self.tz)).date()
            if figure.as_of < data.window.start:
                figure.notes.append(f"before_period|{figure.as_of.isoformat()}")
        if data.stale.get(kpi.id) == 1:
            figure.gaps.append("stale")

    def _from_source(self, figure: Figure, kpi: KpiSpec, data: WindowData) -> None:
        figure.source = data.source.get(kpi.id, "")
        figure.how = "the period's figures from the system, as the agent computed them"
        figure.queries += [v for k, v in data.ids.items() if k.startswith("period_")]
        if data.window.kind == "custom":
            figure.gaps.append("custom_range")
            return
        parts = data.period.get(kpi.id, [])
        expected = len(self._agent_periods(data.window))
        if not parts:
            reason = data.pending.get(kpi.id)
            figure.gaps.append(f"pending|{reason}" if reason else "no_period_figure")
            return
        if len(parts) < expected:
            figure.notes.append(f"quarters|{len(parts)}/{expected}")
        if any(p[3] for p in parts):
            figure.notes.append("approximate")
        numerators = [p[1] for p in parts if p[1] is not None]
        denominators = [p[2] for p in parts if p[2] is not None]
        if len(numerators) == len(denominators) == len(parts):
            figure.numerator = sum(numerators)
            figure.denominator = sum(denominators)
            figure.value = figure.numerator / figure.denominator if figure.denominator else None
        else:
            values = [p[0] for p in parts if p[0] is not None]
            figure.value = values[-1] if values else None
        if data.stale.get(kpi.id) == 1:
            figure.notes.append("stale_source")
        self._source_groups(figure, kpi, data)

    def _source_groups(self, figure: Figure, kpi: KpiSpec, data: WindowData) -> None:
        """Per district (or department) for the KPI's headline period, when that is the window's own period."""
        measure = kpi.measure
        level = getattr(measure, "group_by", None)
        if not level or getattr(measure, "period", None) != data.window.kind or kpi.id not in data.groups:
            return
        figure.queries += [data.ids["group_numerator"], data.ids["group_denominator"]]
        figure.group_level = level
        target = active_target(kpi.targets, data.window.last_day)
        for group, (num, den) in sorted(data.groups[kpi.id].items()):
            row = GroupRow(group, self._name(group) or group, num, den)
            if row.value is not None and target is not None and target.comparator != "qualitative":
                row.verdict = MET if is_met(target, row.value) else NOT_MET
            figure.groups.append(row)
