"""The agent as a service: reload (SIGHUP, POST /-/reload), shutdown, sd_notify and the watchdog, log limits."""

from __future__ import annotations

import itertools
import json
import logging
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from support.exposition import parse_samples
from support.province import Province, coverage, ops_target, thdl_site
from support.service import TEST_COLLECTORS, Agent, wait_until

from agent.domain.logs import RateLimitFilter


def systems(targets: dict[str, int], kpis: list[str], interval: str = "0.3s", timeout: str = "0.25s",
            host: str = "127.0.0.1") -> Province:
    """TCP systems at the THDL on ``host``'s given ports, each KPI their coverage (ops target: half up)."""
    p = thdl_site().collector("tcp", interval=interval, timeout=timeout)
    for target_id, port in targets.items():
        p.target(target_id, "thdl", "tcp", params={"host": host, "port": port})
    for kpi_id in kpis:
        p.kpi(kpi_id, coverage(collector="tcp"), title_vi="Hệ thống hoạt động", title_en="Systems up",
              targets=[ops_target("50%")])
    return p


def province(path: Path, targets: dict[str, int], kpis: list[str], interval: str = "0.3s") -> Path:
    return systems(targets, kpis, interval).write(path)


def metric(samples: dict, name: str, **labels: str) -> float | None:
    hits = [v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()]
    assert len(hits) <= 1, f"{name}{labels}: {len(hits)} samples"
    return hits[0] if hits else None


@pytest.fixture
def agents(tmp_path: Path):
    started: list[Agent] = []

    def start(*args, **kwargs) -> Agent:
        agent = Agent(tmp_path, *args, **kwargs)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def test_reload_swaps_a_valid_configuration_and_refuses_an_invalid_one(tmp_path: Path, tcp_peers, agents) -> None:
    ports = {name: tcp_peers.listening("127.0.0.1") for name in ("a", "b", "c", "c2", "d")}
    config = province(tmp_path / "province.yml", {"sys-a": ports["a"], "sys-b": ports["b"], "sys-c": ports["c"]},
                      ["systems_up"])
    agent = agents(config, ["--web.enable-lifecycle", "--web.reload-min-interval", "0.1s"])
    agent.wait_ready()
    before = parse_samples(wait_until(
        lambda: (t := agent.get("/metrics").text) and metric(parse_samples(t), "egov_target_probes_total",
                                                            target="sys-a") >= 3 and t, 15))
    loaded_at = metric(before, "egov_config_last_reload_success_timestamp_seconds", province="test")
    assert metric(before, "egov_config_last_reload_successful", province="test") == 1

    # An invalid edit: refused with located errors, the running configuration stays in force.
    bad = systems({"sys-a": ports["a"], "sys-b": 99999, "sys-c": ports["c"]}, ["systems_up"])
    bad.targets[1]["unit"] = "nowhere"
    bad.write(config)
    refused = requests.post(agent.base + "/-/reload", timeout=10)
    assert refused.status_code == 400
    assert "province.yml:" in refused.text and "unknown unit 'nowhere'" in refused.text
    assert "targets[1].params.port" in refused.text
    samples = parse_samples(agent.get("/metrics").text)
    assert metric(samples, "egov_config_last_reload_successful", province="test") == 0
    assert metric(samples, "egov_config_last_reload_success_timestamp_seconds", province="test") == loaded_at
    assert metric(samples, "egov_target_up", target="sys-b") == 1  # still probed
    assert "configuration refused, the running one stays in force" in agent.text()

    # A valid edit by SIGHUP: sys-a unchanged, sys-b removed, sys-c moved to another port, sys-d and a KPI added.
    province(config, {"sys-a": ports["a"], "sys-c": ports["c2"], "sys-d": ports["d"]}, ["systems_up", "systems_up_2"])
    agent.proc.send_signal(signal.SIGHUP)

    probes_before = metric(before, "egov_target_probes_total", target="sys-a")

    def reloaded():
        s = parse_samples(agent.get("/metrics").text)
        # The store keeps sys-a's counters (they go on from before the reload instead of restarting at 0).
        return s if metric(s, "egov_target_up", target="sys-d") == 1 and metric(
            s, "egov_target_probes_total", target="sys-a") >= probes_before + 2 else None

    after = wait_until(reloaded, 10, lambda: agent.text())
    assert metric(after, "egov_config_last_reload_successful", province="test") == 1
    assert metric(after, "egov_config_last_reload_success_timestamp_seconds", province="test") > loaded_at
    assert metric(after, "egov_target_up", target="sys-b") is None
    assert metric(after, "egov_target_probes_total", target="sys-b") is None
    assert metric(after, "egov_collector_targets", collector="tcp") == 3
    assert metric(after, "egov_kpi_value", kpi="systems_up_2") == 1
    assert "configuration applied: 3 targets, 2 restarted, 1 removed" in agent.text()

    ok = requests.post(agent.base + "/-/reload", timeout=10)
    assert ok.status_code == 200 and "configuration reloaded: 3 targets" in ok.text
    assert agent.get("/-/reload").status_code == 405
    assert "Traceback" not in agent.text()


def test_sigterm_stops_promptly_while_probes_hang(tmp_path: Path, agents) -> None:
    hung = socket.socket()
    hung.bind(("127.0.0.9", 0))
    hung.listen(0)
    filler = socket.create_connection(hung.getsockname(), timeout=2)  # full accept queue: connects hang
    try:
        config = systems({f"hung-{i}": hung.getsockname()[1] for i in range(20)}, ["systems_up"], interval="10s",
                         timeout="9s", host="127.0.0.9").write(tmp_path / "hung.yml")
        agent = agents(config)
        wait_until(lambda: agent.proc.poll() is None and _answers(agent, "/-/healthy"), 15, agent.text)
        time.sleep(0.5)  # the probes are now waiting on their 9 s timeout
        started = time.monotonic()
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(10) == 0
        assert time.monotonic() - started < 3
    finally:
        filler.close()
        hung.close()
    log = agent.text()
    assert "SIGTERM received: stopping" in log and "stopped" in log and "Traceback" not in log


def _answers(agent: Agent, path: str) -> bool:
    try:
        return agent.get(path, timeout=1).status_code == 200
    except requests.RequestException:
        return False


class NotifyListener:
    """What systemd's end of NOTIFY_SOCKET receives: (monotonic time, datagram) pairs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def first(self, field: str, after: float = 0.0) -> float | None:
        return next((t for t, m in self.messages if t >= after and field in m.splitlines()), None)

    def times(self, field: str) -> list[float]:
        return [t for t, m in self.messages if field in m.splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path):
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


def test_sd_notify_ready_after_first_round_watchdog_reload_and_stop(tmp_path: Path, tcp_peers, agents,
                                                                     notify: NotifyListener) -> None:
    hung = socket.socket()
    hung.bind(("127.0.0.10", 0))
    hung.listen(0)
    filler = socket.create_connection(hung.getsockname(), timeout=2)
    try:
        # A target that answers nothing: READY comes once its probe has outlived a live target's answer time,
        # not after its 8 s timeout (agent/scheduler.py).
        p = systems({"sys-a": tcp_peers.listening("127.0.0.1")}, ["systems_up"], interval="10s", timeout="8s")
        p.target("hung", "thdl", "tcp", params={"host": "127.0.0.10", "port": hung.getsockname()[1]})
        config = p.write(tmp_path / "p.yml")
        started = time.monotonic()
        agent = agents(config, env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "600000"})
        ready_at = wait_until(lambda: notify.first("READY=1"), 20, agent.text)
        assert 1.0 <= ready_at - started < 8.0
        assert agent.get("/-/ready").status_code == 200
        assert any(m.startswith("READY=1\nSTATUS=") and "targets up" in m for _, m in notify.messages)
        time.sleep(1.5)
        pings = notify.times("WATCHDOG=1")
        assert len(pings) >= 5  # every WATCHDOG_USEC/3 = 0.2 s
        assert max(b - a for a, b in itertools.pairwise(pings)) < 0.6

        reload_sent = time.monotonic()
        agent.proc.send_signal(signal.SIGHUP)
        reloading = wait_until(lambda: notify.first("RELOADING=1", reload_sent), 10, agent.text)
        assert wait_until(lambda: notify.first("READY=1", reloading), 10, agent.text)
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(10) == 0
        assert notify.first("STOPPING=1", reloading) is not None
    finally:
        filler.close()
        hung.close()


def test_watchdog_pings_stop_while_the_loop_is_blocked(tmp_path: Path, agents, notify: NotifyListener) -> None:
    """A collector that blocks the asyncio loop (a bug): systemd must see the pings stop, and it would restart us."""
    blocker = thdl_site().collector("blocker", interval="2s", timeout="1.9s", jitter=0)
    config = blocker.target("stuck", "thdl", "blocker", params={"seconds": 1.2}).write(tmp_path / "blocked.yml")
    agent = agents(config, command=TEST_COLLECTORS,
                   env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "300000"})
    wait_until(lambda: notify.first("READY=1"), 20, agent.text)
    time.sleep(4.5)
    pings = notify.times("WATCHDOG=1")
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert len(pings) >= 5 and min(gaps) < 0.3  # pings every 0.1 s while the loop runs ...
    assert max(gaps) >= 1.0  # ... and none while the probe blocks it for 1.2 s
    assert _answers(agent, "/-/healthy")  # the HTTP thread alone would not have noticed


def test_collector_exceptions_are_logged_rate_limited_with_fields(tmp_path: Path, agents) -> None:
    crasher = thdl_site().collector("crasher", interval="0.1s", timeout="0.1s")
    for i in (1, 2, 3):
        crasher.target(f"bad-{i}", "thdl", "crasher")
    config = crasher.write(tmp_path / "crash.yml")
    agent = agents(config, ["--log-format", "json", "--log-rate-limit", "3/60s"], command=TEST_COLLECTORS)
    agent.wait_ready()
    samples = wait_until(lambda: (s := parse_samples(agent.get("/metrics").text)) and (
        metric(s, "egov_collector_errors_total", collector="crasher", reason="internal_error") or 0) >= 30 and s, 15)
    assert metric(samples, "egov_target_up", target="bad-2") == 0
    agent.stop()
    records = [json.loads(line) for line in agent.text().splitlines() if line.startswith("{")]
    raised = [r for r in records if r["message"].endswith("probe raised") and "suppressed" not in r]
    assert len(raised) == 3  # one bug, three targets, 30+ failures: three tracebacks in the window
    assert all("ZeroDivisionError" in r["exception"] for r in raised)
    assert all(r["collector"] == "crasher" and r["reason"] == "internal_error" and r["target"] for r in raised)
    down = [r for r in records if r["message"].startswith("target down")]
    assert {r["target"] for r in down} == {"bad-1", "bad-2", "bad-3"}
    assert all(r["reason"] == "internal_error" and r["unit"] == "thdl" for r in down)
    summary = [r for r in records if r["message"].startswith("suppressed")]
    assert len(summary) == 1 and summary[0]["suppressed"] >= 27  # flushed at shutdown
    assert summary[0]["collector"] == "crasher" and "target" not in summary[0]


def test_rate_limit_filter_counts_per_subject_and_summarises() -> None:
    now = [0.0]
    emitted: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            emitted.append(record)

    handler = Collect()
    limiter = RateLimitFilter(handler, burst=2, window=10.0, clock=lambda: now[0])
    handler.addFilter(limiter)
    logger = logging.getLogger("test.ratelimit")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        for _ in range(5):
            logger.warning("target down: %s", "x", extra={"target": "commune-1"})
            logger.warning("target down: %s", "y", extra={"target": "commune-2"})
            logger.debug("debug is never limited")
        assert [r.target for r in emitted if r.levelno == logging.WARNING] == ["commune-1", "commune-2"] * 2
        assert sum(1 for r in emitted if r.levelno == logging.DEBUG) == 5
        now[0] = 11.0  # the window ends: the next record brings the summaries
        logger.warning("target down: %s", "x", extra={"target": "commune-1"})
        summaries = [r.getMessage() for r in emitted if getattr(r, "suppressed", None)]
        assert len(summaries) == 2
        assert all(s.startswith("suppressed 3 similar messages in 10s") for s in summaries)
        assert any("target=commune-2" in s for s in summaries)
        assert emitted[-1].getMessage() == "target down: x"
    finally:
        logger.removeHandler(handler)


def test_stopping_a_probe_loop_survives_a_lost_cancellation(tmp_path: Path) -> None:
    """Python 3.11's asyncio.wait_for returns the result instead of raising when it is cancelled as the probe
    completes. A reload removing that target once waited forever on its loop (found by bench/soak.py)."""
    import asyncio

    from agent.config.loading import load_config
    from agent.domain.models import StrictModel
    from agent.engine.scheduler import Scheduler
    from agent.engine.store import Store
    from collectors import REGISTRY
    from collectors.api import Collector, ProbeResult

    calls = []

    class Gate(Collector):
        kind = "gate"
        Params = StrictModel

        async def probe(self, target_id: str, params: StrictModel, timeout: float) -> ProbeResult:
            calls.append(target_id)
            return await self.settings.gate  # type: ignore[attr-defined]

    gate = thdl_site().collector("gate", interval="60s", timeout="30s", jitter=0)
    config = gate.target("gated", "thdl", "gate").write(tmp_path / "gate.yml")
    REGISTRY.add(Gate, network=False)
    try:
        loaded = load_config(config)

        async def main() -> None:
            collector = Gate(StrictModel())
            collector.settings.__dict__["gate"] = gate = asyncio.get_running_loop().create_future()
            scheduler = Scheduler(loaded, Store(), {"gate": collector}, list(loaded.config.targets))
            running = asyncio.create_task(scheduler.run_forever())
            while not calls:
                await asyncio.sleep(0.01)
            gate.set_result(ProbeResult(True))  # the probe completes ...
            stopping = asyncio.ensure_future(scheduler._stop(["gated"]))  # ... as the reload cancels its loop
            await asyncio.wait_for(stopping, 5)
            assert calls == ["gated"]  # the loop ended instead of probing on
            assert not running.done()  # a stopped loop is not a crash of the scheduler
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

        asyncio.run(main())
    finally:
        REGISTRY.pop("gate", None)
