"""The measure kind read from the manual data file: a ratio or value someone entered (agent/sources/manual.py).

A figure refers to a date, not to when it was typed in: it is measured at the start of that day in the
province's time zone, and stale once older than the KPI's (or the manual file's) ``stale_after``.
Example rows are shown as such, never as figures.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from agent.config.schema import RatioMeasure, ValueMeasure
from agent.engine.evaluation import EXAMPLE_ONLY, NO_DATA, Context, Evaluation


def manual_figure(ev: Evaluation, measure: RatioMeasure | ValueMeasure, ctx: Context) -> None:
    manual = ctx.manual
    item = manual.values.get(ev.kpi.id) if manual is not None else None
    if manual is None or item is None:
        example = manual.examples.get(ev.kpi.id) if manual is not None else None
        if manual is not None and example is not None:
            ev.source = example.source
            ev.pend(EXAMPLE_ONLY, f"example data only ({manual.path.name}: {example.date}); enter the real figure")
        else:
            ev.pend(NO_DATA, "no value in the manual data file")
        return
    ev.value, ev.numerator, ev.denominator = item.value, item.numerator, item.denominator
    ev.source = item.source
    tz = ZoneInfo(ctx.config.province.timezone)
    ev.measured_at = dt.datetime.combine(item.date, dt.time(), tz).timestamp()
    limit = ev.kpi.stale_after
    if limit is None and ctx.config.manual is not None:
        limit = ctx.config.manual.stale_after
    ev.stale = limit is not None and ctx.now - ev.measured_at > limit
