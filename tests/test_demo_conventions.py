"""``egov-agent demo`` as an operator meets it (issue #13): a real demo process on 127.48.0.0/16.

One demo is started for the module (the simulated Bắc Giang, 1170 targets: about a minute to its first
complete round) and scraped as Prometheus does: its full exposition passes ``promtool check metrics``, it
is gzipped when the scraper asks, the lab's control API is where ``--control`` put it, and the demo says
what it does while the lab starts, logs no ERROR line, and leaves nothing in its temporary folder.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.net import free_port
from support.paths import AGENT
from support.tools import promtool

NETWORK = "127.48.0.0/16"
READY_SECONDS = 240  # the lab's start and the first round on a shared 2-core machine
STOP_SECONDS = 90


@dataclass
class Demo:
    process: subprocess.Popen
    port: int
    control: int
    tmp: Path
    stdout: Path
    stderr: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers.items()), response.read()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    base = tmp_path_factory.mktemp("demo")
    tmp = base / "tmp"  # the demo's and the lab's TMPDIR: what is left there after the demo is theirs
    tmp.mkdir()
    port, control = free_port(), free_port()
    out, err = base / "stdout", base / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([*AGENT, "demo", "--web.listen-address", f"127.0.0.1:{port}", "--network", NETWORK,
                                    "--control", f"127.0.0.1:{control}"], cwd=base, stdout=stdout, stderr=stderr,
                                   env={**os.environ, "TMPDIR": str(tmp)}, start_new_session=True)
    started = Demo(process, port, control, tmp, out, err)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert process.poll() is None, f"the demo exited ({process.returncode}):\n{err.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the demo not ready in {READY_SECONDS}s:\n{err.read_text()[-3000:]}"
            try:
                if _get(started.url("/-/ready"))[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        yield started
    finally:
        started.stop()


def test_full_exposition_passes_promtool_check_metrics(demo: Demo) -> None:
    _, _, body = _get(demo.url("/metrics"))
    assert len(body) > 1_000_000  # the whole province, not a stub
    checked = subprocess.run([promtool(), "check", "metrics"], input=body, capture_output=True, timeout=120)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, b"")


def test_metrics_are_gzipped_when_the_scraper_asks(demo: Demo) -> None:
    _, plain_headers, plain = _get(demo.url("/metrics"))
    status, headers, body = _get(demo.url("/metrics"), {"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip" and headers.get("Vary") == "Accept-Encoding"
    assert "Content-Encoding" not in plain_headers
    unzipped = gzip.decompress(body)
    assert len(body) < len(unzipped) / 5, (len(body), len(unzipped))
    names = {family.name for family in text_string_to_metric_families(unzipped.decode())}
    assert names == {family.name for family in text_string_to_metric_families(plain.decode())}
    # Prometheus' own header, and a scraper refusing gzip with q=0.
    _, headers, _ = _get(demo.url("/metrics"), {"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in headers


def test_lab_control_api_is_where_control_put_it(demo: Demo) -> None:
    status, _, body = _get(f"http://127.0.0.1:{demo.control}/targets")
    assert status == 200 and len(json.loads(body)) == 1170
    assert f"control http://127.0.0.1:{demo.control}" in demo.stdout.read_text()


def test_demo_tells_its_progress_logs_no_error_and_cleans_up(demo: Demo) -> None:
    time.sleep(20)  # every application source has been fetched once (their interval is 1h; the first is at start)
    assert demo.stop() == 0
    log = demo.stderr.read_text()
    assert re.search(r"demo: starting the simulated province bac-giang\.yml on 127\.48\.0\.0/16", log), log[:2000]
    assert re.search(r"demo: lab ready in [\d.]+s; starting the agent", log), log[:2000]
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert not errors, "\n".join(errors[:20])
    assert "fetched" in log  # the sources did run
    assert sorted(p.name for p in demo.tmp.iterdir()) == []
