"""A quarter and more of agent history with known outages, written as OpenMetrics (for ``promtool tsdb
create-blocks-from openmetrics``) and as VictoriaMetrics' JSON-lines import format, so that the report
can be read back against figures computed here by hand.

The series are the ones the agent exports (same names and labels): each commune's member counters of
one coverage KPI, the probe counters of the portals, the member gauge around each cut-off, and a
source-backed KPI's per-period figures. Samples every ``step`` seconds; an agent restart resets every
counter once.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

LABELS = {"job": "egov-agent", "instance": "127.0.0.1:9700"}


@dataclass
class Series:
    name: str
    kind: str  # counter | gauge
    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)  # (unix seconds, value)


@dataclass
class Outage:
    key: str  # a unit or a target id
    start: float
    end: float

    def down_within(self, start: float, end: float) -> float:
        return max(0.0, min(self.end, end) - max(self.start, start))


def down_seconds(outages: list[Outage], key: str, start: float, end: float) -> float:
    return sum(o.down_within(start, end) for o in outages if o.key == key)


@dataclass
class History:
    province: str
    start: float
    end: float
    step: float
    reset_at: float | None
    series: list[Series] = field(default_factory=list)

    def counters(self, key: str, name_labels: list[tuple[str, dict[str, str]]], outages: list[Outage],
                 per_step: float, up_only: str) -> None:
        """``per_step``: what each counter gains in a step when up; ``up_only`` names the one that stops
        while the key is down (the other counts always)."""
        made = [Series(n, "counter", {**LABELS, **labels}) for n, labels in name_labels]
        outages = [o for o in outages if o.key == key]
        totals = [0.0] * len(made)
        t = self.start
        while t <= self.end:
            if self.reset_at is not None and t - self.step < self.reset_at <= t:
                totals = [0.0] * len(made)  # the agent restarted: its counters begin again
            elif t > self.start:
                down = down_seconds(outages, key, t - self.step, t)  # of the step (t - step, t]
                for i, s in enumerate(made):
                    gain = per_step * (1 - down / self.step) if s.name == up_only else per_step
                    totals[i] += gain
            for i, s in enumerate(made):
                s.points.append((t, totals[i]))
            t += self.step
        self.series += made

    def gauge(self, name: str, labels: dict[str, str], values: list[tuple[float, float]]) -> None:
        self.series.append(Series(name, "gauge", {**LABELS, **labels}, values))

    def times(self, start: float, end: float) -> list[float]:
        """The sample instants in [start, end]."""
        first = self.start + max(0.0, -(-(start - self.start) // self.step)) * self.step
        out, t = [], first
        while t <= min(end, self.end):
            out.append(t)
            t += self.step
        return out

    # -- writers -----------------------------------------------------------------------------------
    def openmetrics(self, path: Path) -> None:
        families: dict[str, list[Series]] = {}
        for s in self.series:
            families.setdefault(s.name, []).append(s)
        with path.open("w", encoding="utf-8") as out:
            for name, members in families.items():
                family = name.removesuffix("_total") if members[0].kind == "counter" else name
                out.write(f"# TYPE {family} {members[0].kind}\n")
                for s in members:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    head = f"{name}{{{labels}}} "
                    out.writelines(f"{head}{int(v)} {t:.0f}\n" if v.is_integer() else f"{head}{v!r} {t:.0f}\n"
                                   for t, v in s.points)
            out.write("# EOF\n")

    def jsonl(self) -> bytes:
        lines = []
        for s in self.series:
            lines.append(json.dumps({"metric": {"__name__": s.name, **s.labels},
                                     "values": [v for _, v in s.points],
                                     "timestamps": [round(t * 1000) for t, _ in s.points]}))
        return ("\n".join(lines) + "\n").encode()


def local(day: str, timezone: str, hour: int = 0) -> float:
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), ZoneInfo(timezone)).timestamp()
