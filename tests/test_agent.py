"""The real agent process: scraped over HTTP, its KPI numbers checked, its exposition linted by promtool."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from support.exposition import parse_samples, sample
from support.net import free_port, http_get
from support.paths import AGENT, REPO
from support.province import thdl_systems
from support.tools import promtool


@pytest.fixture
def province(tmp_path: Path, tcp_peers) -> Path:
    ports = {f"up{i}": tcp_peers.listening(f"127.0.0.{i}") for i in (1, 2, 3)}
    down = ("127.0.0.4", tcp_peers.closed("127.0.0.4"))
    return thdl_systems(ports, down, psutil.Process().name()).write(tmp_path / "province.yml")


def test_scrape_reports_kpis_targets_and_self_metrics(province: Path, start_agent) -> None:
    agent = start_agent(province)
    samples = parse_samples(agent.metrics())

    assert sample(samples, "egov_kpi_numerator", kpi="systems_up") == 3
    assert sample(samples, "egov_kpi_denominator", kpi="systems_up") == 4
    assert sample(samples, "egov_kpi_value", kpi="systems_up") == pytest.approx(0.75)
    # Today lies after 2020, so the 2021-2030 phase (>= 70%) is the active target, and it is met.
    assert sample(samples, "egov_kpi_target", kpi="systems_up", phase="2021-2030", comparator=">=") == 0.7
    assert sample(samples, "egov_kpi_target_met", kpi="systems_up", phase="2021-2030") == 1
    assert sample(samples, "egov_kpi_value", kpi="systems_count") == 3
    assert sample(samples, "egov_kpi_target_met", kpi="systems_count", origin="ops") == 0
    info = sample(samples, "egov_kpi_info", kpi="systems_up", document="59/KH-UBND", section="I.1",
                  quote="trên 95 hệ thống", title_vi="Hệ thống hoạt động", title_en="Systems up")
    assert info == 1
    end_of_2030_in_hanoi = dt.datetime(2030, 12, 31, 17, 0, tzinfo=dt.UTC).timestamp()
    assert sample(samples, "egov_kpi_target_deadline_timestamp_seconds", kpi="systems_up") == end_of_2030_in_hanoi

    assert sample(samples, "egov_target_up", target="sys-a", unit="thdl", district="d1", province="p") == 1
    assert sample(samples, "egov_target_up", target="sys-d") == 0
    assert sample(samples, "egov_target_probe_failures_total", target="sys-d", reason="refused") >= 1
    assert sample(samples, "egov_tcp_connect_seconds", target="sys-a") > 0

    assert sample(samples, "egov_target_up", target="host-ok") == 1
    assert sample(samples, "egov_target_up", target="host-missing") == 0
    assert sample(samples, "egov_target_probe_failures_total", target="host-missing", reason="process_down") >= 1
    assert sample(samples, "egov_host_process_running", target="host-missing", process="no-such-daemon-egov") == 0
    assert sample(samples, "egov_host_process_running", target="host-ok") >= 1
    assert sample(samples, "egov_host_cpus", target="host-ok") == psutil.cpu_count()
    assert sample(samples, "egov_host_memory_total_bytes", target="host-ok") == psutil.virtual_memory().total
    root = sample(samples, "egov_host_filesystem_size_bytes", target="host-ok", mountpoint="/")
    assert root == pytest.approx(psutil.disk_usage("/").total)

    assert sample(samples, "egov_build_info") == 1
    assert sample(samples, "egov_config_last_reload_successful", province="test") == 1
    assert sample(samples, "egov_collector_targets", collector="tcp") == 4
    assert sample(samples, "egov_collector_errors_total", collector="tcp", reason="refused") >= 1
    assert sample(samples, "egov_collector_probe_duration_seconds_count", collector="tcp") >= 4
    assert sample(samples, "egov_collector_last_success_timestamp_seconds", collector="tcp") > time.time() - 60
    assert sample(samples, "process_resident_memory_bytes") > 0


def test_exposition_passes_promtool_and_openmetrics_is_negotiated(province: Path, start_agent, tmp_path) -> None:
    agent = start_agent(province)
    text = agent.metrics()
    lint = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    status, content_type, body = http_get(agent.base + "/metrics",
                                          {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    values = {(m.name, s.labels.get("kpi")): s.value for m in parse_openmetrics(body.decode()) for s in m.samples}
    assert values[("egov_kpi_value", "systems_up")] == 0.75

    status, content_type, body = http_get(agent.base + "/")
    assert status == 200 and content_type.startswith("text/html")
    assert b'href="/metrics"' in body and "Tỉnh Thử".encode() in body
    assert http_get(agent.base + "/-/healthy")[0] == 200
    assert http_get(agent.base + "/nothing-here")[0] == 404


def down_since(samples: dict, target: str) -> list[float]:
    return [v for (n, ls), v in samples.items()
            if n == "egov_target_down_since_timestamp_seconds" and dict(ls)["target"] == target]


def test_state_changes_show_on_the_next_probe(province: Path, start_agent, tcp_peers) -> None:
    """Up, then down: the KPI follows, and a target down says since when (alert texts quote it); one up has
    no down-since time at all."""
    started = time.time()
    agent = start_agent(province)
    before = parse_samples(agent.metrics())
    assert sample(before, "egov_target_up", target="sys-a") == 1
    assert down_since(before, "sys-a") == []
    assert sample(before, "egov_target_up", target="sys-d") == 0
    [d_since] = down_since(before, "sys-d")
    assert started <= d_since <= time.time()
    closed = time.time()
    for s in tcp_peers.sockets:  # every simulated system goes down
        s.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        samples = parse_samples(agent.metrics())
        if sample(samples, "egov_kpi_numerator", kpi="systems_up") == 0:
            break
        time.sleep(0.5)
    assert sample(samples, "egov_kpi_value", kpi="systems_up") == 0
    assert sample(samples, "egov_kpi_target_met", kpi="systems_up") == 0
    [a_since] = down_since(samples, "sys-a")
    assert closed <= a_since <= time.time()
    assert down_since(samples, "sys-d") == [d_since]  # the same run of failures: its start does not move


def test_hung_target_delays_neither_other_targets_nor_scrapes(tmp_path: Path, tcp_peers, start_agent) -> None:
    """A target whose connect hangs (a listener with a full accept queue) until its timeout."""
    hung = socket.socket()
    hung.bind(("127.0.0.9", 0))
    hung.listen(0)
    filler = socket.create_connection(hung.getsockname(), timeout=2)  # fills the queue: later SYNs are dropped
    try:
        ports = {f"up{i}": tcp_peers.listening(f"127.0.0.{i}") for i in (1, 2, 3)}
        province = thdl_systems(ports, hung.getsockname(), "init", interval="1s", timeout="1s")
        agent = start_agent(province.write(tmp_path / "hung.yml"))
        first = parse_samples(agent.metrics())
        slowest = 0.0
        for _ in range(12):  # about 6 s: six probe intervals of the healthy targets
            started = time.monotonic()
            agent.metrics()
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.5)
        later = parse_samples(agent.metrics())
    finally:
        filler.close()
        hung.close()
    assert sample(later, "egov_target_probe_failures_total", target="sys-d", reason="timeout") >= 1
    # The healthy targets kept their 1 s interval while sys-d hung for its whole timeout each time
    # (scrapes show data up to a render interval old, so count conservatively).
    gained = sample(later, "egov_target_probes_total", target="sys-a") - sample(first, "egov_target_probes_total",
                                                                               target="sys-a")
    assert gained >= 3
    assert slowest < 0.9  # a scrape never waited for the 1 s probe timeout


def test_sigterm_stops_the_agent_promptly(province: Path, start_agent) -> None:
    agent = start_agent(province)
    started = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(10) == 0
    assert time.monotonic() - started < 5


def test_cli_once_version_and_exit_codes(province: Path, tmp_path: Path) -> None:
    env = {**os.environ}
    run = lambda *a: subprocess.run([*AGENT, *a], capture_output=True, text=True, cwd=REPO, env=env, timeout=60)  # noqa: E731
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("egov-agent ")

    table = run("once", "--config", str(province))
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("systems_up "))
    assert "75.0%" in row and "3/4" in row and ">= 70.0%" in row and "met" in row

    exposition = run("once", "--config", str(province), "--format", "prometheus")
    samples = parse_samples(exposition.stdout)
    assert sample(samples, "egov_kpi_value", kpi="systems_up") == pytest.approx(0.75)

    assert run("run", "--config", str(province), "--listen", "nonsense").returncode == 2
    assert run("once", "--config", str(tmp_path / "absent.yml")).returncode == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port()))
        busy.listen(1)
        port = busy.getsockname()[1]
        taken = run("run", "--config", str(province), "--listen", f"127.0.0.1:{port}")
    assert taken.returncode == 1 and "cannot listen" in taken.stderr


def test_host_collector_names_what_is_missing(tmp_path: Path) -> None:
    """Checked in-process: a configured mount point that is absent, and systemd units where PID 1 may not be
    systemd (then the reason says systemd cannot be asked, rather than claiming the unit is down)."""
    import asyncio

    from collectors.host.probe import HostCollector, HostParams, _unit_states

    collector = HostCollector(HostCollector.Settings())
    result = asyncio.run(collector.probe("h", HostParams(mountpoints=["/", "/no/such/mount"]), 5.0))
    assert (result.up, result.reason) == (False, "mount_missing")
    mounts = {s.labels[0] for s in result.samples if s.family == "host_filesystem_size_bytes"}
    assert mounts == {"/"}

    result = asyncio.run(collector.probe("h", HostParams(systemd_units=["egov-no-such.service"]), 5.0))
    states = _unit_states(["egov-no-such.service"], 5.0)
    if states is None:
        assert (result.up, result.reason) == (False, "systemd_unavailable")
    else:
        assert (result.up, result.reason) == (False, "unit_down")
        assert [s.value for s in result.samples if s.family == "host_systemd_unit_active"] == [0.0]
