#!/usr/bin/env python3
"""False downs of a CPU-starved agent while the lab keeps every router up.

Runs the scenario of tests/test_overload.py (tests/support/starved_agent.py): ``egov-agent lab`` with N
routers, all up, in its own process; ``egov-agent run`` in another; once every router is seen up, the
agent alone gets ``--share`` of one CPU (a cgroup quota, else taskset with busy loops) for
``--seconds``. Prints what the agent said meanwhile and after: coverage, whether it called itself
overloaded, probes overrun, failed and skipped, and how many routers it logged down. ``--repo`` runs
another checkout's agent (e.g. a worktree of main) to compare. Needs root for the cgroup.

Usage: .venv/bin/python bench/overload.py [--communes 200] [--share 0.03] [--seconds 60] [--repo DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("EGOV_AGENT_PROBE_ALLOW", "127.0.0.0/8,::1/128")

from support.starved_agent import starve  # noqa: E402  (after the path above)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communes", type=int, default=200, help="routers, a multiple of 20")
    parser.add_argument("--share", type=float, default=0.03, help="of one CPU, while starved")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", default="10s")
    parser.add_argument("--jitter", default="1.0")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose agent runs")
    args = parser.parse_args()
    snmp = (f"{{interval: {args.interval}, timeout: 3s, concurrency: 64, jitter: {args.jitter}, "
            "settings: {timeout: 1, retries: 1}}")
    with tempfile.TemporaryDirectory(prefix="egov-overload-") as tmp:
        outcome = starve(Path(tmp), args.communes, snmp, args.share, args.seconds, args.repo.resolve())
    print(f"{args.repo}: {outcome.summary(args.seconds)}")


if __name__ == "__main__":
    main()
