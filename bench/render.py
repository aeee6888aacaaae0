#!/usr/bin/env python3
"""CPU of one /metrics rendering, the incremental renderer against prometheus_client's, in one process.

Builds a store of ``--targets`` TCP targets (about ten series each, as the scrape bench's and the
scale engineer's), then times, per format (text 0.0.4, OpenMetrics 1.0.0): prometheus_client over the
same snapshot (what the agent did before), the incremental renderer's first rendering (every target
formatted), and its steady renderings with ``--changed`` of the targets probed since the last one
(a 60 s cycle re-rendered every second changes 1/60 of them). CPU time of this thread, median of
``--repeats``; the load average is printed beside each figure. Both outputs are compared byte for byte.

Usage: .venv/bin/python bench/render.py [--targets 2000 40000] [--changed 0.0167] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from prometheus_client.exposition import choose_encoder

from agent.engine.store import Store
from collectors.api import ProbeResult, Sample
from collectors.tcp.probe import TcpCollector
from exporters.prometheus import AgentView, ConfigStatus, EgovCollector, Exposition, TargetLabels
from exporters.snapshot import Snapshots
from exporters.text_format import Only

FORMATS = ("text/plain; version=0.0.4", "application/openmetrics-text; version=1.0.0")


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def cpu(fn) -> tuple[float, object]:
    started = time.thread_time()
    result = fn()
    return time.thread_time() - started, result


def build(targets: int) -> tuple[Store, Exposition]:
    store = Store()
    families = {"tcp": TcpCollector.families}
    labels = {f"t{i}": TargetLabels("tcp", ("tcp", f"t{i}", f"c{i}", "commune", "p", f"d{i % 10}", f"c{i}"), f"Xã {i}")
              for i in range(targets)}
    view = AgentView(["province", "district", "commune"], labels, families, "Asia/Ho_Chi_Minh", lambda states: [])
    for i in range(targets):
        probe(store, i, 0)
    snapshots = Snapshots(store, view)
    return store, Exposition(EgovCollector(snapshots, lambda: ConfigStatus("bench", "", True, 1.0, 1.0)))


def probe(store: Store, i: int, round_: int) -> None:
    up = (i + round_) % 50 != 0
    samples = [Sample(f.name, 0.001 * (i % 97 + round_), ()) for f in TcpCollector.families if not f.labels]
    store.record(f"t{i}", "tcp", ProbeResult(up, "" if up else "refused", samples), 0.002, 1_764_000_000.0 + i + round_)


def run(targets: int, changed: float, repeats: int) -> None:
    store, exposition = build(targets)
    collector = exposition.collector
    step = max(1, round(1 / changed)) if changed else 0
    for content_type in FORMATS:
        encoder, ct = choose_encoder(content_type)
        snap, status = collector.latest()
        library = []
        for _ in range(repeats):
            seconds, expected = cpu(lambda: encoder(Only(list(collector.metrics(snap, status)))))  # noqa: B023
            library.append(seconds)
        exposition.targets._view = None  # a first rendering: every target formatted
        first, body = cpu(lambda: exposition.compose(snap, status, ct, encoder, process=False))  # noqa: B023
        assert body == expected, "the incremental text differs from prometheus_client's"
        series = body.count(b"\n") - body.count(b"\n#") - (0 if body.startswith(b"#") else 1)
        steady = []
        for round_ in range(1, repeats + 1):
            if step:
                for i in range(round_ % step, targets, step):
                    probe(store, i, round_)
            snap, status = collector.latest()
            seconds, body = cpu(lambda: exposition.compose(snap, status, ct, encoder, process=False))  # noqa: B023
            steady.append(seconds)
        assert body == encoder(Only(list(collector.metrics(snap, status))))
        print(f"{targets:6d} targets {series:7d} series  {ct.split(';')[0]:30s}"
              f"  prometheus_client {statistics.median(library) * 1000:7.1f} ms"
              f"  incremental first {first * 1000:7.1f} ms"
              f"  steady ({exposition.targets.reformatted} targets changed) {statistics.median(steady) * 1000:6.1f} ms"
              f"  body {len(body) / 2**20:5.1f} MiB  [{load()}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[2000, 40000])
    parser.add_argument("--changed", type=float, default=1 / 60, help="share of targets probed between renderings")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for targets in args.targets:
        run(targets, args.changed, args.repeats)


if __name__ == "__main__":
    main()
