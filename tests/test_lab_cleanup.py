"""``egov-agent demo`` and ``egov-agent lab`` as real processes leave no nftables table behind (issue #16).

Each test runs the commands as child processes in their own session on 127.211.0.0/16, injects an ICMP
fault through the lab's control API (so the lab has loaded its table), stops them the way a user or a
service manager does, and reads ``nft list tables`` afterwards. Only tables named after the processes
started here are looked at: other labs may be running on the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.net import free_port, http_get
from support.paths import AGENT, REPO
from support.province import commune_routers

NETWORK = "127.211.0.0/16"


@pytest.fixture
def nft_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("ICMP faults in the lab need root (nftables rules on loopback)")
    if shutil.which("nft") is None:
        pytest.skip("ICMP faults in the lab need nft (Debian package nftables)")


def nft(*words: str) -> str:
    return subprocess.run(["nft", *words], capture_output=True, text=True, check=True, timeout=30).stdout


def tables_of(pid: int) -> list[str]:
    """The lab's tables (any family) named after process ``pid``."""
    return re.findall(rf"^table \w+ (egov_lab_{pid}_\d+)$", nft("list", "tables"), re.M)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def dead_pid() -> int:
    """The pid of a process that ran, exited and was reaped here."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    return child.pid


def post(url: str) -> int:
    request = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Command:
    """``egov-agent demo|lab`` as a child in its own session (a terminal's foreground process group)."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO,
                                     start_new_session=True)
        self.pids = [self.proc.pid]  # and the demo's lab, once known

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 90.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode} before {pattern!r}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout}s:\n{self.output()}")

    def lab_pid(self, demo: bool) -> int:
        if not demo:
            return self.proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            labs = children(self.proc.pid)
            if labs:
                assert len(labs) == 1, labs
                self.pids.append(labs[0])
                return labs[0]
            time.sleep(0.1)
        raise AssertionError(f"the demo started no lab:\n{self.output()}")

    def stop(self, how: str) -> int:
        if how == "SIGINT":  # Ctrl-C in a terminal: the whole foreground group, the demo and its lab alike
            os.killpg(self.proc.pid, signal.SIGINT)
        else:  # kill -TERM <pid>, systemctl stop: the process alone
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(120)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running 120 s after {how}:\n{self.output()}") from None

    def close(self) -> None:
        """Whatever a failed test left running (an orphaned lab too: it stays in the group), then its tables."""
        group = self.proc.pid
        if self.proc.poll() is None or any(running(pid) and os.getpgid(pid) == group for pid in self.pids[1:]):
            with contextlib.suppress(ProcessLookupError):  # the group is still ours: a member of it runs
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)
        for pid in self.pids:
            for table in tables_of(pid):
                subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, check=False)
        self._out.close()


@pytest.fixture
def run(tmp_path: Path) -> Iterator:
    started: list[Command] = []

    def start(argv: list[str]) -> Command:
        command = Command(argv, tmp_path / f"command-{len(started)}.log")
        started.append(command)
        return command

    yield start
    for command in started:
        command.close()


def argv_for(command: str, tmp_path: Path, down_ratio: float = 0.0, control: str = "127.0.0.1:0") -> list[str]:
    province = commune_routers("10.30.0", 2, count=3, interval=0.01).write(tmp_path / "province.yml")
    if command == "demo":
        return [*AGENT, "demo", "--province", str(province), "--listen", f"127.0.0.1:{free_port()}",
                "--network", NETWORK, "--down-ratio", str(down_ratio)]
    return [*AGENT, "lab", "--config", str(province), "--write-config", str(tmp_path / "agent.yml"),
            "--network", NETWORK, "--down-ratio", str(down_ratio), "--control", control]


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("command", ["demo", "lab"])
def test_stopping_with_a_signal_leaves_no_nftables_table(tmp_path, nft_root, run, command, how):
    started = run(argv_for(command, tmp_path))
    control = started.wait_for(r"lab ready: .* control (http://\S+)").group(1)
    lab_pid = started.lab_pid(command == "demo")
    if command == "demo":
        listen = re.search(r"--listen (\S+)", " ".join(started.proc.args)).group(1)  # type: ignore[union-attr]
        started.wait_for(r"first collection round started")
        assert http_get(f"http://{listen}/-/ready")[0] == 200
    assert tables_of(lab_pid) == []  # no fault yet: no table
    assert post(f"{control}/targets/r1/down") == 200
    assert tables_of(lab_pid) == [f"egov_lab_{lab_pid}_1"]
    assert "@down" in nft("list", "table", "ip", f"egov_lab_{lab_pid}_1")

    assert started.stop(how) == 0, started.output()
    assert not running(lab_pid), f"the lab outlived the {command}:\n{started.output()}"
    assert tables_of(lab_pid) == [], started.output()


def demo_with_a_fault(tmp_path: Path, run) -> tuple[Command, int]:
    started = run(argv_for("demo", tmp_path))
    control = started.wait_for(r"lab ready: .* control (http://\S+)").group(1)
    lab_pid = started.lab_pid(demo=True)
    started.wait_for(r"first collection round started")
    assert post(f"{control}/targets/r1/down") == 200
    assert tables_of(lab_pid) == [f"egov_lab_{lab_pid}_1"]
    return started, lab_pid


def test_the_demo_deletes_the_table_of_a_lab_that_was_killed(tmp_path, nft_root, run):
    """SIGKILL cannot be caught by the lab, but the demo that waits for it deletes what it left."""
    started, lab_pid = demo_with_a_fault(tmp_path, run)
    os.kill(lab_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while running(lab_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tables_of(lab_pid) == [f"egov_lab_{lab_pid}_1"]  # a zombie now: the demo has not reaped it yet
    assert started.stop("SIGTERM") == 0, started.output()
    assert tables_of(lab_pid) == [], started.output()
    assert f"egov_lab_{lab_pid}_1" in started.output()  # the one line saying it was removed


def test_the_lab_stops_when_the_demo_is_killed(tmp_path, nft_root, run):
    """The demo killed with SIGKILL (it cannot stop its lab): the lab sees its parent gone and closes."""
    started, lab_pid = demo_with_a_fault(tmp_path, run)
    started.proc.kill()
    started.proc.wait(30)
    deadline = time.monotonic() + 120
    while running(lab_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(lab_pid), started.output()
    assert "is gone: stopping" in started.output()
    assert tables_of(lab_pid) == [], started.output()


def test_demo_stopped_while_it_starts_leaves_no_table(tmp_path, nft_root, run):
    """The issue's case: SIGTERM while the agent is still starting (its own handlers not yet installed)."""
    started = run(argv_for("demo", tmp_path, down_ratio=0.5))  # one of the two routers starts down: a table
    lab_pid = started.lab_pid(demo=True)
    deadline = time.monotonic() + 90
    while not tables_of(lab_pid):
        assert time.monotonic() < deadline and started.proc.poll() is None, started.output()
        time.sleep(0.05)
    assert "first collection round started" not in started.output()
    assert started.stop("SIGTERM") == 0, started.output()
    assert not running(lab_pid), started.output()
    assert tables_of(lab_pid) == [], started.output()


def test_lab_that_fails_to_start_leaves_no_table(tmp_path, nft_root, run):
    """An error at start-up, after the table was loaded: here the control port is taken."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = run(argv_for("lab", tmp_path, down_ratio=0.5, control=f"127.0.0.1:{port}"))
        assert started.proc.wait(120) == 1, started.output()
    assert "error: the lab could not start" in started.output()
    assert tables_of(started.proc.pid) == [], started.output()


def test_lab_start_removes_only_the_tables_of_dead_labs(tmp_path, nft_root, run):
    dead = dead_pid()
    stale = f"egov_lab_{dead}_1"
    live = f"egov_lab_{os.getpid()}_91"  # this pytest runs: not stale
    others = [("ip", f"egov_labx_{dead}_1"), ("inet", stale), ("ip", f"egov_lab_{dead}")]  # not the lab's naming
    mine = [("ip", stale), ("ip", live), *others]
    try:
        for family, name in mine:
            nft("add", "table", family, name)
        started = run(argv_for("lab", tmp_path, down_ratio=0.0))  # no fault at start: the sweep is the start's
        started.wait_for(r"lab ready:")
        listed = nft("list", "tables")
        assert f"table ip {stale}\n" not in listed
        for family, name in [("ip", live), *others]:
            assert f"table {family} {name}\n" in listed
        lines = [line for line in started.output().splitlines() if stale in line]
        assert len(lines) == 1 and "removed" in lines[0] and "no longer running" in lines[0], started.output()
        assert started.stop("SIGTERM") == 0
    finally:
        for family, name in mine:
            subprocess.run(["nft", "delete", "table", family, name], capture_output=True, check=False)
