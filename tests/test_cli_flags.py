"""The agent's flags as Prometheus exporters name them (issue #13), the old spellings kept for one release."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.paths import AGENT, REPO
from support.province import Province

from agent.domain.version import __version__
from exporters.prometheus import accepts_gzip

PROVINCE = str(REPO / "config" / "provinces" / "hung-yen.yml")


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, cwd=REPO, timeout=60)


@pytest.mark.parametrize("command", ["run", "demo", "check-config", "once"])
def test_version_after_any_command(command: str) -> None:
    done = _agent(command, "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"egov-agent {__version__}"), done.stderr


def test_old_spellings_work_and_say_what_replaces_them() -> None:
    old = _agent("check-config", "--skip-secrets", "--log-level", "debug", "--log-format", "json", PROVINCE)
    assert old.returncode == 0, old.stderr
    assert "--log-level is the old spelling of --log.level" in old.stderr
    assert "--log-format is the old spelling of --log.format" in old.stderr
    new = _agent("check-config", "--skip-secrets", "--log.level", "debug", "--log.format", "json", PROVINCE)
    assert new.returncode == 0 and "old spelling" not in new.stderr, new.stderr
    assert '"level": "debug"' in new.stderr or new.stderr == ""  # json logs, if any line was logged


@pytest.mark.parametrize("flag", ["--web.listen-address", "--listen"])
def test_listen_address_is_checked_under_its_new_name(flag: str, tmp_path: Path) -> None:
    config = Province().write(tmp_path / "c.yml")  # the root unit alone
    done = _agent("run", "--config", str(config), flag, "nowhere")
    assert done.returncode == 2 and "error: --web.listen-address: expected HOST:PORT, got 'nowhere'" in done.stderr


@pytest.mark.parametrize(("header", "gzip"), [
    ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8, *;q=0.1", True), ("*", True),
    ("identity", False), ("", False), (None, False), ("gzip;q=0", False), ("gzip;q=0.0, identity", False),
    ("*;q=0", False), ("GZIP", True), ("x-gzip", True), ("gzip;q=bad", False), ("deflate, *;q=0.5", True),
])
def test_accept_encoding(header: str | None, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip


@pytest.mark.parametrize("command", ["lab", "demo"])
def test_network_off_ipv4_loopback_is_a_clean_error(command: str, tmp_path: Path) -> None:
    """An IPv6 --network once reached the loopback check of the lab and ended in a TypeError traceback."""
    extra = ["--config", PROVINCE, "--write-config", str(tmp_path / "agent.yml")] if command == "lab" else []
    done = _agent(command, *extra, "--network", "::1/128")
    assert done.returncode == 2 and "error: --network:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
