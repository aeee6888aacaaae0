"""The listener opens before the configuration loads (issue #15): ``/-/healthy`` answers within a second of
exec, the rest answers 503 until the agent is built, and a configuration that does not load still exits 2
with its errors and leaves nothing listening.

The configuration's secret is read from a named pipe, so the test holds the load for as long as it likes:
a real agent process, blocked in the middle of ``load_config`` the way a slow file system or a large
province would hold it.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import threading
import time
from pathlib import Path

from support.agent_process import AgentProcess
from support.net import free_port, http_get
from support.province import Province

from agent.app.http import STARTING
from agent.app.webconfig import hash_password

TOKEN = "start-order-token"


def _province(tmp_path: Path, fifo: Path, broken: bool = False) -> Path:
    p = Province()
    p.collector("http", interval="30s", timeout="2s")
    closed = free_port()  # nothing listens: the probe fails fast, and the agent becomes ready
    p.target("portal", unit="p", collector="http",
             params={"url": f"http://127.0.0.1:{closed}/", "auth": {"kind": "bearer", "token": f"file:{fifo}"}})
    if broken:
        p.target("portal", unit="p", collector="http", params={"url": "http://127.0.0.1:1/"})  # a duplicate id
    return p.write(tmp_path / "province.yml")


def _wait_healthy(agent: AgentProcess, timeout: float = 20.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert agent.proc.poll() is None, agent.log.read_text()
        try:
            if http_get(agent.base + "/-/healthy", timeout=1)[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"/-/healthy did not answer within {timeout}s:\n{agent.log.read_text()}")


def _release(fifo: Path, text: str) -> threading.Thread:
    """Give the blocked load its secret (opening a pipe for writing waits for its reader)."""
    def write() -> None:
        fd = os.open(fifo, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_healthy_answers_and_the_rest_say_starting_while_the_configuration_loads(tmp_path: Path) -> None:
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    agent = AgentProcess(_province(tmp_path, fifo), tmp_path)
    try:
        _wait_healthy(agent)
        assert agent.proc.poll() is None  # still loading: nobody has written the secret yet
        for path in ("/metrics", "/-/ready", "/", "/units/p"):
            status, _, body = http_get(agent.base + path)
            assert (status, body) == (503, STARTING), path
        assert http_get(agent.base + "/nowhere")[0] == 404
        _release(fifo, TOKEN + "\n").join(10)
        agent.wait_ready()
        metrics = agent.metrics()
        assert 'egov_target_up{' in metrics and 'target="portal"' in metrics
        assert TOKEN not in metrics
    finally:
        agent.stop()


def test_a_configuration_that_fails_to_load_exits_2_and_stops_listening(tmp_path: Path) -> None:
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    agent = AgentProcess(_province(tmp_path, fifo, broken=True), tmp_path)
    try:
        _wait_healthy(agent)
        _release(fifo, TOKEN + "\n").join(10)
        assert agent.proc.wait(30) == 2
        log = agent.log.read_text()
        assert "duplicate" in log and "province.yml:" in log, log
        with socket.socket() as s:  # the listener went with the configuration
            assert s.connect_ex(("127.0.0.1", agent.port)) != 0
    finally:
        agent.stop()


def test_sigterm_while_the_configuration_loads_stops_cleanly(tmp_path: Path) -> None:
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    agent = AgentProcess(_province(tmp_path, fifo), tmp_path)
    try:
        _wait_healthy(agent)
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(10) == 0
        log = agent.log.read_text()
        assert "SIGTERM received: stopping" in log and "stopped" in log and "Traceback" not in log, log
    finally:
        agent.stop()


def test_the_web_configuration_applies_while_the_configuration_loads(tmp_path: Path) -> None:
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hash_password('s3cret', 4)}'\n", encoding="utf-8")
    agent = AgentProcess(_province(tmp_path, fifo), tmp_path, ["--web.config.file", str(web)])
    auth = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret").decode()}
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if http_get(agent.base + "/-/healthy", auth, timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        assert http_get(agent.base + "/-/healthy", auth)[0] == 200
        assert http_get(agent.base + "/-/healthy")[0] == 401  # basic auth from the first request
        assert http_get(agent.base + "/metrics")[0] == 401
        assert http_get(agent.base + "/metrics", auth)[:3:2] == (503, STARTING)
        assert agent.proc.poll() is None
    finally:
        agent.stop()
