"""Exposition of application KPIs per reporting period and of the sources they are read from.

Kept apart from ``exporters.prometheus`` (which calls it) so the existing families stay as they
are: source-backed KPIs still have ``egov_kpi_value`` (their headline period) and gain
``egov_kpi_period_*`` series labelled with the period's kind and first day (and ``approximate="true"``
where monthly figures fill a period that does not begin on the 1st); each source reports
whether its last fetch worked, when one last did, its errors by reason and how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.domain.periods import ReportingSpec, current_periods
from agent.engine.kpi import Evaluation

PREFIX = "egov_"


def period_metrics(province: str, evaluations: Iterable[Evaluation], reporting: ReportingSpec | None,
                   timezone: str, now: float | None = None) -> Iterator[Metric]:
    labels = ["province", "kpi", "period", "period_start", "approximate"]
    value = GaugeMetricFamily(PREFIX + "kpi_period_value",
                              "The KPI within the current reporting period (month, quarter, year to date).",
                              labels=labels)
    num = GaugeMetricFamily(PREFIX + "kpi_period_numerator", "Numerator of the KPI within the period.", labels=labels)
    den = GaugeMetricFamily(PREFIX + "kpi_period_denominator", "Denominator of the KPI within the period.",
                            labels=labels)
    for ev in evaluations:
        for pv in ev.periods:
            key = [province, ev.kpi.id, pv.period.kind, pv.period.start.isoformat(),
                   "true" if pv.approximate else "false"]
            if pv.value is not None:
                value.add_metric(key, pv.value)
            if pv.numerator is not None and pv.denominator is not None:
                num.add_metric(key, pv.numerator)
                den.add_metric(key, pv.denominator)
    yield from (value, num, den)
    if reporting is None:
        return
    bound_labels = ["province", "period", "period_start"]
    start = GaugeMetricFamily(PREFIX + "reporting_period_start_timestamp_seconds",
                              "First moment of the current reporting period (province time zone).",
                              labels=bound_labels)
    end = GaugeMetricFamily(PREFIX + "reporting_period_end_timestamp_seconds",
                            "First moment after the current reporting period.", labels=bound_labels)
    for kind, period in current_periods(reporting, timezone, now).items():
        key = [province, kind, period.start.isoformat()]
        start.add_metric(key, period.start_timestamp(timezone))
        end.add_metric(key, period.end_timestamp(timezone))
    yield from (start, end)


def source_metrics(statuses: Iterable) -> Iterator[Metric]:
    """``statuses``: agent.sources.runner.SourceStatus, one per configured source."""
    up = GaugeMetricFamily(PREFIX + "source_up", "1 if the source's last fetch succeeded.", labels=["source", "kind"])
    stale = GaugeMetricFamily(PREFIX + "source_stale", "1 if the source's values are older than its stale_after.",
                              labels=["source"])
    last = GaugeMetricFamily(PREFIX + "source_last_success_timestamp_seconds",
                             "When the source was last fetched successfully (0: never).", labels=["source"])
    duration = GaugeMetricFamily(PREFIX + "source_fetch_duration_seconds", "Duration of the last fetch.",
                                 labels=["source"])
    interval = GaugeMetricFamily(PREFIX + "source_interval_seconds", "How often the source is fetched.",
                                 labels=["source"])
    fetches = CounterMetricFamily(PREFIX + "source_fetches", "Fetches attempted.", labels=["source"])
    errors = CounterMetricFamily(PREFIX + "source_errors", "Failed fetches by reason.", labels=["source", "reason"])
    skipped = GaugeMetricFamily(PREFIX + "source_skipped_rows",
                                "Malformed rows skipped in the last good fetch (file drops, the manual data file; "
                                "see the log).",
                                labels=["source"])
    unknown = GaugeMetricFamily(PREFIX + "source_unknown_units",
                                "Unit codes in the last good fetch that match no configured unit.", labels=["source"])
    series_up = GaugeMetricFamily(PREFIX + "source_series_up",
                                  "1 if the series' query worked in the source's last fetch (sql: each series "
                                  "stands alone; a failed one keeps its last good values).",
                                  labels=["source", "series"])
    for s in statuses:
        up.add_metric([s.id, s.kind], 1.0 if s.up else 0.0)
        stale.add_metric([s.id], 1.0 if s.stale else 0.0)
        last.add_metric([s.id], s.last_success)
        duration.add_metric([s.id], s.last_duration)
        interval.add_metric([s.id], s.interval)
        fetches.add_metric([s.id], float(s.fetches))
        for reason, n in sorted(s.errors.items()):
            errors.add_metric([s.id, reason], float(n))
        skipped.add_metric([s.id], float(s.skipped_rows))
        unknown.add_metric([s.id], float(s.unknown_units))
        for name, ok in sorted(s.series_up.items()):
            series_up.add_metric([s.id, name], 1.0 if ok else 0.0)
    yield from (up, stale, last, duration, interval, fetches, errors, skipped, unknown, series_up)


def app_metrics(province: str, evaluations: Sequence[Evaluation], view) -> Iterator[Metric]:
    """Everything this module exports, for ``EgovCollector.collect``."""
    statuses = view.sources() if getattr(view, "sources", None) else []
    if statuses:
        yield from source_metrics(statuses)
    if any(s.kind != "manual" for s in statuses) or any(ev.periods for ev in evaluations):
        yield from period_metrics(province, evaluations, getattr(view, "reporting", None), view.timezone,
                                  time.time())
