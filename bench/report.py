#!/usr/bin/env python3
"""The quarterly report for Bắc Giang from a quarter of history: wall time, peak memory, queries.

Generates a quarter (and the days around it) of the series the report reads, for every target of the
province (~1,170) and every member of its probe-measured coverage KPIs, imports them into a
VictoriaMetrics (Debian's package) on loopback, then runs ``egov-agent report --period 2026-Q3`` as a
real process for each ``--format`` and prints its wall time, peak resident memory and the number of
queries it made (from the json report), with the number of samples the history holds.

``--step`` is the sampling interval of the generated history: 30 s is what Prometheus keeps from a
30 s scrape, but generating 600 million samples in Python takes long; the default of 300 s keeps
the run to a few minutes, and the report's cost grows with the samples its subqueries read.

Usage: .venv/bin/python bench/report.py [--step 300] [--formats json docx xlsx]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.paths import AGENT  # noqa: E402
from support.realstack import VictoriaMetrics  # noqa: E402
from support.report_history import History, Outage, local  # noqa: E402

from agent.config.loading import load_config  # noqa: E402
from agent.config.schema import CoverageMeasure  # noqa: E402
from agent.engine.kpi import KpiEngine  # noqa: E402
from agent.engine.units import UnitIndex  # noqa: E402

PROVINCE = REPO / "config" / "provinces" / "bac-giang.yml"
TZ = "Asia/Ho_Chi_Minh"


def history(step: float, out: Path) -> tuple[int, int, int, int]:
    """Writes the history as VictoriaMetrics JSON lines into ``out``, a few series at a time (a quarter
    of every target's samples would not fit in memory as Python objects)."""
    config = load_config(PROVINCE, resolve_secrets=False).config
    units = UnitIndex(config)
    engine = KpiEngine(config, units, None)
    h = History("bg", local("2026-06-01", TZ), local("2026-09-15", TZ), step, local("2026-08-01", TZ, 5) + 7)
    outages = [Outage("bg-hh-01", local("2026-07-01", TZ), local("2026-07-03", TZ))]
    series = samples = members = 0
    with out.open("wb") as sink:
        def flush() -> None:
            nonlocal series, samples
            series += len(h.series)
            samples += sum(len(s.points) for s in h.series)
            sink.write(h.jsonl())
            h.series.clear()

        for target in config.targets:
            labels = {"province": "bg", "target": target.id, "collector": target.collector}
            h.counters(target.id, [("egov_target_probes_total", labels),
                                   ("egov_target_probe_successes_total", labels)],
                       outages, step / 30, "egov_target_probe_successes_total")
            flush()
        for kpi in config.kpis:
            measure = kpi.measure
            if isinstance(measure, CoverageMeasure) and measure.over_units and not measure.from_source:
                inventory = engine.inventory_of(measure)
                assert inventory is not None
                for unit in inventory.members:
                    labels = {"province": "bg", "kpi": kpi.id, "unit": unit}
                    h.counters(unit, [("egov_kpi_member_up_seconds_total", labels),
                                      ("egov_kpi_member_observed_seconds_total", labels)], outages, step,
                               "egov_kpi_member_up_seconds_total")
                    members += 1
                    flush()
    return len(config.targets), members, series, samples


def run(url: str, fmt: str, out: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([*AGENT, "report", "--config", str(PROVINCE), "--prometheus", url, "--period", "2026-Q3",
                           "--format", fmt, "-o", str(out)], capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"report --format {fmt} failed: {done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child so far
    return elapsed, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, default=300.0)
    parser.add_argument("--formats", nargs="+", default=["json", "docx", "xlsx"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="egov-bench-report-") as tmp:
        started = time.perf_counter()
        lines = Path(tmp) / "history.jsonl"
        targets, members, series, samples = history(args.step, lines)
        print(f"history: {targets} targets, {members} coverage members, {series} series, "
              f"{samples / 1e6:.1f} M samples every {args.step:g} s ({time.perf_counter() - started:.0f} s to "
              "generate)", flush=True)
        vm = VictoriaMetrics(Path(tmp))
        try:
            started = time.perf_counter()
            vm.import_file(lines)
            print(f"VictoriaMetrics import: {lines.stat().st_size / 1e6:.0f} MB in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            lines.unlink()
            for fmt in args.formats:
                out = Path(tmp) / f"q3.{fmt}"
                elapsed, peak = run(vm.url, fmt, out)
                line = f"report --format {fmt:4}: {elapsed:6.1f} s wall, peak RSS {peak:5.0f} MB (largest run so far)"
                if fmt == "json":
                    report = json.loads(out.read_text(encoding="utf-8"))
                    line += f", {len(report['queries'])} queries for {len(report['figures'])} KPIs"
                print(line, flush=True)
        finally:
            vm.stop()


if __name__ == "__main__":
    main()
