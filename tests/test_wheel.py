"""The wheel is enough on its own (issues #13, #12): built from the checkout, installed into a fresh virtualenv
(dependencies from the machine's package index), ``egov-agent demo`` started from a folder outside the
repository serves the simulated province's /metrics. The lab's libraries are the ``lab`` extra: without it
the demo says which extra to install. Slow: a few minutes, most of them pip's.
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

from prometheus_client.parser import text_string_to_metric_families
from support.net import free_port
from support.paths import REPO

PIP_SECONDS = 900  # the dependencies (matplotlib, cryptography, pysnmp...) on a shared machine
READY_SECONDS = 300
COVERAGE = "wan_commune_coverage_2020"  # the shipped Bắc Giang's commune WAN coverage: 230 communes
KINDS = {"host", "icmp", "snmp", "http", "tcp", "sip", "mcu", "power"}  # every kind the demo's lab simulates


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
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert f"{dist_info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    requires = [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ")]
    # What only the tests or the lab use is an extra, so the service's venv does not carry it.
    assert [r for r in requires if r.startswith("trustme")] == ['trustme>=1.1; extra == "lab"'], requires
    assert [r for r in requires if r.startswith("requests")] == ['requests>=2.31; extra == "test"'], requires

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _pip(venv, "install", "-q", str(wheel))
    outside = tmp_path / "elsewhere"  # neither the repository nor anything in it
    outside.mkdir()
    agent = str(venv / "bin" / "egov-agent")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    version = subprocess.run([agent, "run", "--version"], capture_output=True, text=True, cwd=outside, env=env,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("egov-agent "), version
    without_lab = subprocess.run([agent, "demo", "--web.listen-address", f"127.0.0.1:{free_port()}",
                                  "--network", "127.48.0.0/16"], capture_output=True, text=True, cwd=outside,
                                 env=env, timeout=120)
    assert without_lab.returncode == 1, without_lab
    assert without_lab.stderr.strip() == ("error: egov-agent demo needs the lab extra (trustme is not installed): "
                                          "pip install 'egov-agent[lab]'"), without_lab.stderr

    _pip(venv, "install", "-q", f"{wheel}[lab]")
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen([agent, "demo", "--web.listen-address", f"127.0.0.1:{port}",
                                 "--network", "127.48.0.0/16"], cwd=outside, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_SECONDS
        samples: dict[tuple[str, str], list[tuple[dict[str, str], float]]] = {}
        while ("egov_kpi_denominator", COVERAGE) not in samples:
            assert demo.poll() is None, f"the demo exited ({demo.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no coverage KPI within {READY_SECONDS}s:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=10) as ready:
                    if ready.status == 200:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as scraped:
                            samples = _by_name_and_kpi(scraped.read().decode())
            except OSError:
                pass
            time.sleep(2)
        # The demo's own province, read from the wheel's package data: its units, its KPIs, every simulated kind.
        ups = samples[("egov_target_up", "")]
        assert {labels["collector"] for labels, _ in ups} == KINDS
        assert {labels["province"] for labels, _ in ups} == {"bg"}
        assert [value for _, value in samples[("egov_kpi_denominator", COVERAGE)]] == [230.0]
        assert ("egov_build_info", "") in samples
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
    assert demo.returncode == 0, log.read_text()[-3000:]


def _by_name_and_kpi(text: str) -> dict[tuple[str, str], list[tuple[dict[str, str], float]]]:
    """The exposition's samples by (sample name, kpi label or "")."""
    found: dict[tuple[str, str], list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault((sample.name, sample.labels.get("kpi", "")), []).append((sample.labels, sample.value))
    return found
