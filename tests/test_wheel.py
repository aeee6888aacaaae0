"""The wheel is enough on its own (issue #13): built from the checkout, installed into a fresh virtualenv
(dependencies from the machine's package index), ``egov-agent demo`` started from a folder outside the
repository serves the simulated province's /metrics. Slow: a few minutes, most of them pip's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

from support.net import free_port
from support.paths import REPO

PIP_SECONDS = 900  # the dependencies (matplotlib, cryptography, pysnmp...) on a shared machine
READY_SECONDS = 300


def _pip(venv: Path, *args: str) -> None:
    done = subprocess.run([str(venv / "bin" / "pip"), "--disable-pip-version-check", *args], capture_output=True,
                          text=True, timeout=PIP_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]


def test_demo_runs_from_a_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=PIP_SECONDS)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("egov_agent-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("agent/shipped/provinces/bac-giang.yml", "agent/shipped/provinces/bac-giang/wan.yml",
                    "agent/shipped/provinces/bac-giang/manual.csv", "agent/shipped/systemd/egov-agent.service",
                    "agent/shipped/alertmanager/alertmanager.example.yml"):
        assert shipped in names, shipped
    assert not [n for n in names if n.startswith(("tests/", "config/", "dashboards/"))]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _pip(venv, "install", "-q", str(wheel))
    outside = tmp_path / "elsewhere"  # neither the repository nor anything in it
    outside.mkdir()
    version = subprocess.run([str(venv / "bin" / "egov-agent"), "run", "--version"], capture_output=True, text=True,
                             cwd=outside, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("egov-agent "), version

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen([str(venv / "bin" / "egov-agent"), "demo", "--web.listen-address", f"127.0.0.1:{port}",
                                 "--network", "127.48.0.0/16"], cwd=outside, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_SECONDS
        body = b""
        while not body:
            assert demo.poll() is None, f"the demo exited ({demo.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no /metrics within {READY_SECONDS}s:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=10) as ready:
                    if ready.status == 200:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as scraped:
                            body = scraped.read()
            except OSError:
                time.sleep(2)
        text = body.decode()
        assert 'egov_target_up{' in text and 'province="bg"' in text, text[:2000]
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
    assert demo.returncode == 0, log.read_text()[-3000:]
