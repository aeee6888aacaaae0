#!/usr/bin/env python3
"""The README's table of each province's KPIs: how many are plan targets and ops objectives, how each is
measured, and which wait on something the configuration lacks (an inventory not yet declared), so that
a reader sees at once what the agent can and cannot yet prove for a province.

Rewrites the block between the README's ``kpi-table`` markers; ``--check`` exits 1 if it is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config.loading import load_config  # noqa: E402
from agent.config.schema import CoverageMeasure  # noqa: E402
from agent.engine.kpi import KpiEngine  # noqa: E402
from agent.engine.units import UnitIndex  # noqa: E402

README = ROOT / "README.md"
START, END = "<!-- kpi-table:start -->", "<!-- kpi-table:end -->"


def table() -> str:
    rows = ["| province | KPIs | plan targets | ops objectives | direct (probed) | from a system | manual | "
            "waiting on an inventory |", "|---|---|---|---|---|---|---|---|"]
    for path in sorted((ROOT / "config" / "provinces").glob("*.yml")):
        config = load_config(path, resolve_secrets=False).config
        engine = KpiEngine(config, UnitIndex(config), None)
        classes = Counter(k.kpi_class for k in config.kpis)
        plan = sum(1 for k in config.kpis if any(t.origin == "plan" for t in k.targets))
        waiting = []
        for kpi in config.kpis:
            if isinstance(kpi.measure, CoverageMeasure):
                inventory = engine.inventory_of(kpi.measure)
                if inventory is not None and not inventory.complete:
                    waiting.append(f"`{kpi.id}`")
        rows.append(f"| {config.province.name_vi} (`{path.name}`) | {len(config.kpis)} | {plan} | "
                    f"{len(config.kpis) - plan} | {classes['direct']} | {classes['from_system']} | "
                    f"{classes['manual']} | {len(waiting)}{': ' + ', '.join(waiting) if waiting else ''} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's table is not current")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"{README}: no {START} … {END} block", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{table()}\n{END}{tail}"
    if args.check:
        if updated != text:
            print("README.md: the KPI table is stale; run scripts/gen_readme_kpis.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    print(f"wrote the KPI table into {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
