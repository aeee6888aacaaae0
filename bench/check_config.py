"""check-config of the shipped provinces: this tree against baseline commits, alternately, in one run.

Each run is a fresh interpreter (``python -m <cli> check-config <province> --skip-secrets``) with the same
venv and the tree on PYTHONPATH; A and B alternate so that the machine's load falls on both alike. Prints
median, min and max wall and CPU seconds for each, the ratio, and the load average. Each tree's modules are
compiled to bytecode first, as in an installed package: otherwise a tree without ``__pycache__`` (a fresh
worktree, or any tree under ``PYTHONDONTWRITEBYTECODE``) pays ~0.04 s of compiling on every run, and the
comparison measures the cache instead of the code. ``--no-compile`` measures it the old way.

    .venv/bin/python bench/check_config.py [--baseline a0dfa03 --baseline 91b8ce3] [--repeat 5] [--province bac-giang]

The default baselines: a0dfa03, main when issue #12 was written (every kind's libraries loaded by the
configuration), and 91b8ce3, main before the #12 redesign (lazy kinds, libyaml).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINES = ("a0dfa03", "91b8ce3")


def cli_module(tree: Path) -> str:
    return "agent.app.cli" if (tree / "agent" / "app" / "cli.py").is_file() else "agent.cli"


def run_once(tree: Path, province: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one check-config in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(tree), "EGOV_AGENT_PROBE_ALLOW": "127.0.0.0/8,::1/128"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", cli_module(tree), "check-config", str(province), "--skip-secrets"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"check-config of {province} failed in {tree}:\n{done.stdout}{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="append", help="commit to compare with (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--province", action="append", help="shipped province name (default: all)")
    parser.add_argument("--no-compile", action="store_true", help="do not compile the trees' bytecode first")
    args = parser.parse_args()
    names = args.province or sorted(p.stem for p in (REPO / "config" / "provinces").glob("*.yml"))
    baselines = args.baseline or list(BASELINES)
    with tempfile.TemporaryDirectory(prefix="egov-bench-check-") as tmp:
        trees = {"HEAD": REPO}
        for commit in baselines:
            tree = Path(tmp) / commit
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), commit], check=True)
            trees[commit] = tree
        try:
            if not args.no_compile:
                for tree in trees.values():
                    packages = [str(tree / name) for name in ("agent", "collectors", "exporters")
                                if (tree / name).is_dir()]
                    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
            print(f"bytecode {'not compiled' if args.no_compile else 'compiled first'}; "
                  f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
            print(f"HEAD vs {', '.join(baselines)}: {args.repeat} runs each, alternating; "
                  f"load average before: {os.getloadavg()[0]:.2f}")
            for name in names:
                timings: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
                for _ in range(args.repeat):
                    for label, tree in trees.items():
                        timings[label].append(run_once(tree, tree / "config" / "provinces" / f"{name}.yml"))
                print(f"\n{name}:")
                for label, runs in timings.items():
                    print(f"  {label:8} wall {summary([w for w, _ in runs])}; CPU {summary([c for _, c in runs])}")
                head_wall = statistics.median(w for w, _ in timings["HEAD"])
                head_cpu = statistics.median(c for _, c in timings["HEAD"])
                for commit in baselines:
                    wall = statistics.median(w for w, _ in timings[commit])
                    cpu = statistics.median(c for _, c in timings[commit])
                    print(f"  HEAD against {commit}: {wall / head_wall:.2f}x faster in wall time, "
                          f"{cpu / head_cpu:.2f}x in CPU")
            print(f"\nload average after: {os.getloadavg()[0]:.2f}")
        finally:
            for label, tree in trees.items():
                if label != "HEAD":
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
