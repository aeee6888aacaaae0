#!/usr/bin/env python3
"""/metrics with and without gzip, from a running agent (``egov-agent demo`` is the 3.6 MB case).

Scrapes ``--scrapes`` times each way, alternating, and prints bytes on the wire and median / p90
latency, plus the cost of one compression of the body at the agent's level (what a new rendering
costs the agent once; later scrapes of that rendering get the cached gzip).
Usage: .venv/bin/python bench/gzip_scrape.py http://127.0.0.1:9747/metrics [--scrapes 30]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
import urllib.request

from exporters.prometheus import GZIP_LEVEL


def scrape(url: str, gzipped: bool) -> tuple[float, int, bytes]:
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
        body = response.read()
        assert (response.headers.get("Content-Encoding") == "gzip") == gzipped
    return time.perf_counter() - started, len(body), body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--scrapes", type=int, default=30)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    sizes: dict[bool, int] = {}
    plain = b""
    for _ in range(args.scrapes):
        for gzipped in (False, True):
            seconds, size, body = scrape(args.url, gzipped)
            times[gzipped].append(seconds)
            sizes[gzipped] = size
            plain = body if not gzipped else plain
    started = time.perf_counter()
    gzip.compress(plain, compresslevel=GZIP_LEVEL, mtime=0)
    compress = time.perf_counter() - started
    print(f"load average {os.getloadavg()[0]:.2f}; {args.scrapes} scrapes each way")
    for gzipped in (False, True):
        ts = sorted(times[gzipped])
        print(f"{'gzip    ' if gzipped else 'identity'}: {sizes[gzipped] / 1e6:.2f} MB on the wire, "
              f"median {statistics.median(ts) * 1000:.0f} ms, p90 {ts[int(len(ts) * 0.9) - 1] * 1000:.0f} ms")
    print(f"one compression of the {len(plain) / 1e6:.2f} MB body at level {GZIP_LEVEL}: {compress * 1000:.0f} ms")


if __name__ == "__main__":
    main()
