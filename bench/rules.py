"""Rule cost: each generated group's evaluation time in a real Prometheus over an hour of Bắc Giang data.

The hour is backfilled, not waited for: the agent monitors the simulated province (``egov-agent lab``)
until every collector has probed, its exposition is read once, and an hour of 30 s scrapes is written
from it as OpenMetrics (counters growing at the pace they show, gauges as they are, ``up`` 1), turned
into TSDB blocks with ``promtool tsdb create-blocks-from openmetrics``. The hour ends when it is
written, and building the blocks takes minutes, so Prometheus runs with a 30-minute lookback for
instant selectors. Prometheus then loads the blocks and the rules, every group's interval set to 10 s
so that even the hourly groups run here (their expressions stay as generated), and ``/api/v1/rules``
gives each group's ``evaluationTime``; the figure printed is the median of the evaluations seen, and
the worst.

    python bench/rules.py                      # this checkout's rules
    python bench/rules.py --rules-from ../main # another checkout's generator, on the same data
    python bench/rules.py --rules-from ../main --repeat 2 --exposition /tmp/bg.prom
        # this, main, this, main on the same blocks (the hour's end recedes meanwhile, so alternate);
        # the exposition is kept in /tmp/bg.prom and read from there the next time (no lab, no agent)

The goal (issue 13): every group under 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from benchutil import wait_ready
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
PROVINCE = REPO / "config" / "provinces" / "bac-giang.yml"
STEP = 30.0
HOUR = 3600.0
GOAL_MS = 200.0
TOP_RULES = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])




def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def exposition(tmp: Path, network: str, settle: float) -> str:
    """The agent's /metrics over the simulated province, once every collector has had time to probe."""
    agent_config = tmp / "agent.yml"
    lab = subprocess.Popen([sys.executable, "-m", "agent.app.cli", "lab", "--config", str(PROVINCE), "--write-config",
                            str(agent_config), "--network", network], cwd=REPO,
                           stdout=(tmp / "lab.log").open("wb"), stderr=subprocess.STDOUT)
    agent = None
    try:
        deadline = time.monotonic() + 180
        while not agent_config.exists():
            if lab.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the lab did not start:\n" + (tmp / "lab.log").read_text()[-2000:])
            time.sleep(0.5)
        port = free_port()
        agent = subprocess.Popen([sys.executable, "-m", "agent.app.cli", "run", "--config", str(agent_config),
                                  "--listen", f"127.0.0.1:{port}"], cwd=REPO,
                                 stdout=(tmp / "agent.log").open("wb"), stderr=subprocess.STDOUT)
        wait_ready(f"http://127.0.0.1:{port}/-/ready", agent, 120)
        time.sleep(settle)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
            return response.read().decode()
    finally:
        if agent is not None:
            stop(agent)
        stop(lab)


def _labels(labels: dict[str, str]) -> str:
    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{escaped(v)}"' for k, v in sorted(labels.items()))


def backfill_openmetrics(text: str, end: float, path: Path) -> int:
    """An hour of 30 s samples ending at ``end``; returns the number of series written."""
    instance = {"job": "egov-agent", "instance": "127.0.0.1:9747"}
    series: dict[str, list[tuple[dict[str, str], float, bool]]] = {}
    for family in text_string_to_metric_families(text):
        counter = family.type in ("counter", "histogram", "summary")
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            series.setdefault(sample.name, []).append(({**sample.labels, **instance}, float(sample.value), counter))
    series["up"] = [(dict(instance), 1.0, False)]
    steps = int(HOUR / STEP)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for name in sorted(series):
            out.write(f"# TYPE {name} gauge\n")
            for labels, value, growing in series[name]:
                rendered = _labels(labels)
                count += 1
                for i in range(steps + 1):
                    t = end - HOUR + i * STEP
                    # A counter read after a minute of probing grows by that much each further minute.
                    v = value * (1 + i * STEP / 60.0) if growing else value
                    out.write(f"{name}{{{rendered}}} {v:.17g} {t:.3f}\n")
        out.write("# EOF\n")
    return count


def rules_file(tmp: Path, source: Path, name: str) -> Path:
    path = tmp / f"rules-{name}.yml"
    subprocess.run([sys.executable, "-m", "agent.app.cli", "rules", "--config", str(PROVINCE), "-o", str(path)],
                   cwd=source, check=True, capture_output=True, timeout=120)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for group in data["groups"]:
        group["interval"] = "10s"  # the hourly groups too: their cost is the same at any interval
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def measure(tmp: Path, blocks: Path, rules: Path, name: str, rounds: int,
            nice: int = 0) -> tuple[dict[str, tuple[float, float]], dict[tuple[str, str], float]]:
    """Each group's median and worst evaluationTime (ms) over ``rounds`` evaluations, and each rule's median."""
    data = tmp / f"data-{name}"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(blocks, data)
    port = free_port()
    config = tmp / f"prometheus-{name}.yml"
    config.write_text(yaml.safe_dump({"global": {"evaluation_interval": "10s"}, "rule_files": [str(rules)]}))
    proc = subprocess.Popen([shutil.which("prometheus") or "prometheus", f"--config.file={config}",
                             f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=30d",
                             # the backfilled hour ends before the blocks are built: keep its last samples
                             # in reach of instant selectors while the rules run
                             "--query.lookback-delta=30m",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=(tmp / f"prometheus-{name}.log").open("wb"), stderr=subprocess.STDOUT,
                            preexec_fn=(lambda: os.nice(nice)) if nice else None)
    seen: dict[str, dict[str, float]] = {}
    rule_times: dict[tuple[str, str], list[float]] = {}
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready", proc, 120)
        deadline = time.monotonic() + 10 * rounds + 60
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=30) as response:
                groups = json.load(response)["data"]["groups"]
            for group in groups:
                if group.get("lastEvaluation", "").startswith("0001"):
                    continue
                seen.setdefault(group["name"], {})[group["lastEvaluation"]] = group["evaluationTime"] * 1000
                for rule in group["rules"]:
                    key = (group["name"], rule.get("name", ""))
                    rule_times.setdefault(key, []).append(rule.get("evaluationTime", 0.0) * 1000)
            if groups and all(len(seen.get(g["name"], {})) >= rounds for g in groups):
                break
            time.sleep(2)
    finally:
        stop(proc)
    groups_ms = {g: (statistics.median(v.values()), max(v.values())) for g, v in seen.items()}
    rules_ms = {k: statistics.median(v) for k, v in rule_times.items()}
    print(f"[{name}] load {os.getloadavg()[0]:.2f}; slowest rules (median ms over the reads):")
    for (group, rule), ms in sorted(rules_ms.items(), key=lambda item: -item[1])[:TOP_RULES]:
        print(f"  {ms:8.1f}  {group} / {rule}")
    if groups_ms:
        worst = max(groups_ms, key=lambda g: groups_ms[g][1])
        print(f"[{name}] the group with the worst evaluation, {worst} "
              f"(median {groups_ms[worst][0]:.1f} ms, worst {groups_ms[worst][1]:.1f} ms), its rules:")
        costly = sorted(((ms, rule) for (group, rule), ms in rules_ms.items() if group == worst), reverse=True)
        for ms, rule in costly[:TOP_RULES]:
            print(f"  {ms:8.1f}  {rule}")
    print(f"[{name}] the groups with the worst evaluations, each evaluation in the order run (ms):")
    for group in sorted(groups_ms, key=lambda g: -groups_ms[g][1])[:6]:
        print(f"  {group:52} " + " ".join(f"{seen[group][t]:.0f}" for t in sorted(seen[group])))
    return groups_ms, rules_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules-from", type=Path, action="append", default=[],
                        help="another checkout whose generator to compare (repeatable)")
    parser.add_argument("--network", default="127.46.0.0/16")
    parser.add_argument("--settle", type=float, default=75.0, help="seconds of probing before the read")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nice", type=int, default=0,
                        help="run Prometheus at this niceness (e.g. -15 as root): on a machine busy with other "
                             "work, the figure is then Prometheus's own, as on the server it has to itself")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure every source this many times, alternating (this, other, this, other)")
    parser.add_argument("--exposition", type=Path,
                        help="the agent's exposition: read from this file if it exists (no lab, no agent), "
                             "else written there after the lab run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="egov-bench-rules-") as directory:
        tmp = Path(directory)
        if args.exposition is not None and args.exposition.exists():
            text = args.exposition.read_text(encoding="utf-8")
        else:
            text = exposition(tmp, args.network, args.settle)
            if args.exposition is not None:
                args.exposition.write_text(text, encoding="utf-8")
        end = time.time()  # no sample ahead of the head: rule results would be out of bounds
        om = tmp / "hour.om"
        count = backfill_openmetrics(text, end, om)
        blocks = tmp / "blocks"
        subprocess.run([shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from", "openmetrics",
                        str(om), str(blocks)], check=True, capture_output=True, timeout=1800)
        om.unlink()
        print(f"blocks built {time.time() - end:.0f} s after the hour's end; load {os.getloadavg()[0]:.2f}")
        sources = {"this": REPO, **{str(p): p.resolve() for p in args.rules_from}}
        files = {name: rules_file(tmp, source, name.replace("/", "_")) for name, source in sources.items()}
        runs: list[tuple[str, float, dict[str, tuple[float, float]]]] = []
        for _ in range(args.repeat):
            for name in sources:
                late = time.time() - end
                groups_ms, _rules_ms = measure(tmp, blocks, files[name], name.replace("/", "_"), args.rounds,
                                               args.nice)
                runs.append((name, late, groups_ms))
    print(f"series backfilled: {count} (1 h at {STEP:g} s); load {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs; Prometheus at nice {args.nice}")
    print("each cell: median ms over the evaluations seen (worst); a column per run, in the order run, "
          "with how long after the hour's end it started")
    groups = sorted({g for _n, _l, r in runs for g in r})
    heads = [f"{name[-14:]} +{late:.0f}s" for name, late, _r in runs]
    print(f"{'group':34}" + "".join(f"{h:>24}" for h in heads))
    for group in groups:
        cells = [f"{r[group][0]:7.1f} ({r[group][1]:7.1f})" if group in r else "-" for _n, _l, r in runs]
        print(f"{group:34}" + "".join(f"{c:>24}" for c in cells))
    print(f"{'all groups (sum of medians)':34}" + "".join(f"{sum(m for m, _ in r.values()):10.1f}{'':14}"
                                                        for _n, _l, r in runs))
    for name in sources:
        mine = [r for n, _l, r in runs if n == name]
        slowest = max(m for r in mine for m, _ in r.values())
        worst = max(w for r in mine for _, w in r.values())
        print(f"{name}: slowest group median {slowest:.1f} ms, worst single evaluation {worst:.1f} ms; "
              f"goal every group <= {GOAL_MS:g} ms: {'met' if worst <= GOAL_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
