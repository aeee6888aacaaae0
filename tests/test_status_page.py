"""The status page at / in headless Chromium: KPI table against targets, worst offenders, collectors; no scripts."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import http_get, write_config
from test_agent import CONFIG

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium not found: install Debian's chromium (scripts/test does)")


@pytest.fixture
def agent(tmp_path: Path, tcp_peers, start_agent):
    ports = {f"up{i}": tcp_peers.listening(f"127.0.0.{i}") for i in (1, 2, 3)}
    body = CONFIG.format(interval="3s", down=tcp_peers.closed("127.0.0.4"), process="no-such-process", **ports)
    return start_agent(write_config(tmp_path / "province.yml", body))


def test_status_page_renders_in_chromium(agent, tmp_path: Path) -> None:
    status, content_type, page = http_get(agent.base + "/")
    assert status == 200 and content_type.startswith("text/html")
    assert b"<script" not in page.lower()  # no JavaScript: it works in any browser, even a text one

    profile = tmp_path / "chromium-profile"
    common = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1200"]
    dom = subprocess.run([*common, "--dump-dom", agent.base + "/"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    # The KPI table, in Vietnamese and English, each against its target, with the citation.
    assert "Hệ thống hoạt động" in text and "Systems up" in text
    assert "75.0%" in text and "&gt;= 70.0%" in text and "Đạt / met" in text
    assert "Chưa đạt / below" in text  # systems_count: 3 is not > 3
    assert "59/KH-UBND" in text and "trên 95 hệ thống" in text
    # Worst offenders: the refused system and the host missing its process, with their reasons.
    assert "sys-d" in text and "refused" in text and "process_down" in text
    # Collectors' health.
    assert "tcp" in text and "3/4" in text

    shot = tmp_path / "status.png"
    run = subprocess.run([*common, f"--screenshot={shot}", agent.base + "/"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1400, 1200)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    print(f"screenshot: {shot}")
