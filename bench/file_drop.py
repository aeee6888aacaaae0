#!/usr/bin/env python3
"""Memory of reading a big manual data file and a big file_drop report, just below the 20 MiB cap.

Writes each file once, then reads it in a fresh child process (so the peak is that read's alone):
the manual data file through ``ManualData.refresh`` and the report through a real ``file_drop``
source's fetch; ``--repo`` runs the same reads with another checkout's agent (to compare with the
code from before they streamed). Prints the file's size and rows, the child's resident memory after
its imports, its peak (VmHWM, reset after the imports) during the read, and the wall time.

The manual file keeps one value per KPI, so its read holds a row at a time. A report keeps the rows
that can still count (dated in the earliest period served, the year to date, or later), so its peak
grows with those rows, not with the file's bytes; the generated report has 200 units' daily rows
going back years, like a system's full export.

Usage: .venv/bin/python bench/file_drop.py [--mib 19] [--repo /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
sys.path[:0] = [{repo!r}, {tests!r}]

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)

mode, path = sys.argv[1], Path(sys.argv[2])
from agent.config.loading import load_config
from agent.sources.manual import ManualData
from agent.sources.runner import SourceRunner
from agent.engine.units import UnitIndex
if mode == "report":
    loaded = load_config(path)
    runner = SourceRunner.from_config(loaded, set(UnitIndex(loaded.config).units))
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) from here on, not the imports'
started = time.perf_counter()
if mode == "manual":
    try:
        data = ManualData(path, "Asia/Ho_Chi_Minh")
    except TypeError:  # a checkout from before the time zone and the size cap
        data = ManualData(path)
    data.refresh()
    count = len(data.values)
elif mode == "report":
    async def main():
        await runner.fetch_all()
        await runner.close()
    asyncio.run(main())
    state = runner.states["reports"]
    assert state.up, state.errors
    count = sum(len(p.rows) for p in state.source._files.values())
elapsed = time.perf_counter() - started
print(json.dumps({{"rss_before_mib": before, "peak_mib": status("VmHWM"), "kept": count, "seconds": elapsed}}))
"""

UNITS = textwrap.dedent("""\
    province: {code: t, name_vi: Tỉnh Thử, name_en: Test Province}
    levels: [province, commune]
    units:
      - id: p
        name_vi: Tỉnh Thử
        level: province
        children:
    """)


def write_manual(path: Path, target: int) -> int:
    today = dt.date.today()
    rows = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("kpi,date,source,value\n")
        while f.tell() < target:
            day = today - dt.timedelta(days=rows % 3000)
            f.write(f"kpi_{rows % 50},{day.day:02d}/{day.month:02d}/{day.year},Sở Thông tin và Truyền thông,"
                    f"{rows % 100}%\n")
            rows += 1
    return rows


def write_report(folder: Path, target: int, units: int) -> int:
    today = dt.date.today()
    rows = 0
    with open(folder / "bao-cao.csv", "w", encoding="utf-8") as f:
        f.write("ma_don_vi,ky_bao_cao,xu_ly_tren_mang,tong_so\n")
        while f.tell() < target:
            day = today - dt.timedelta(days=rows // units)
            f.write(f"x{rows % units:03d},{day.isoformat()},{rows % 90},{100 + rows % 50}\n")
            rows += 1
    return rows


def report_config(tmp: Path, units: int) -> Path:
    children = "".join(f"      - {{id: x{i:03d}, name_vi: Xã {i}, level: commune}}\n" for i in range(units))
    body = UNITS + children + textwrap.dedent("""\
        sources:
          - id: reports
            kind: file_drop
            granularity: daily
            folder: reports
            columns: {unit: ma_don_vi, date: ky_bao_cao}
            interval: 1h
            timeout: 10m
            series:
              work_files: {numerator: xu_ly_tren_mang, denominator: tong_so}
        kpis: []
        """)
    path = tmp / "province.yml"
    path.write_text(body, encoding="utf-8")
    return path


def child(mode: str, path: Path, repo: Path) -> dict:
    code = CHILD.format(repo=str(repo), tests=str(repo / "tests"))
    out = subprocess.run([sys.executable, "-c", code, mode, str(path)], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=19.0, help="size of each file (the default cap is 20 MiB)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose agent reads the files "
                                                                "(another one, to compare with its code)")
    args = parser.parse_args()
    target = int(args.mib * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="egov-bench-") as tmp_name:
        tmp = Path(tmp_name)
        manual = tmp / "manual.csv"
        manual_rows = write_manual(manual, target)
        print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        runs = [("manual data", "manual", manual, manual, manual_rows)]
        # 200 units' daily rows back for years (most count nowhere now), then 2,600 units' of this year only.
        for units, what in ((200, "years of history"), (2600, "all this year")):
            case = tmp / f"u{units}"
            (case / "reports").mkdir(parents=True)
            rows = write_report(case / "reports", target, units)
            report = case / "reports" / "bao-cao.csv"
            runs.append((f"file_drop, {units} units, {what}", "report", report_config(case, units), report, rows))
        for title, mode, path, data, rows in runs:
            started = time.perf_counter()
            figures = child(mode, path, args.repo)
            size = data.stat().st_size
            print(f"{title:40s} {size / 2**20:5.1f} MiB {rows:>8,} rows: RSS after imports "
                  f"{figures['rss_before_mib']:6.1f} MiB, peak {figures['peak_mib']:6.1f} MiB "
                  f"(+{figures['peak_mib'] - figures['rss_before_mib']:.1f}), read in {figures['seconds']:.2f} s "
                  f"(kept {figures['kept']:,}; child {time.perf_counter() - started:.1f} s)")
        print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
