"""The systemd unit: ``systemd-analyze verify`` and ``security`` (offline: PID 1 here need not be systemd),
and the agent working under the memory protection the unit asks for (MemoryDenyWriteExecute)."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import trustme
from support.paths import REPO
from support.province import Province, web_config
from support.service import Agent

UNIT = REPO / "config" / "systemd" / "egov-agent.service"
INSTALLED_VENV = "/opt/egov-agent/venv"
EXPOSURE_OK = 4.9  # systemd-analyze's "OK" band ends here


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze not found: install Debian's systemd package (scripts/test does)")
    return path


def unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's venv (verify wants an executable there),
    as scripts/install-service does for its own prefix."""
    agent = Path(sys.executable).parent / "egov-agent"
    assert agent.exists(), f"{agent}: install the project into its venv (pip install -e .)"
    unit = tmp_path / "egov-agent.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_VENV, str(agent.parent.parent)))
    return unit


def settings(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    text = re.sub(r"\\\n\s*", " ", unit.read_text())
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_verifies_and_its_exposure_is_in_the_ok_band(tmp_path: Path) -> None:
    unit = unit_here(tmp_path)
    verify = subprocess.run([systemd_analyze(), "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stdout + verify.stderr

    security = subprocess.run([systemd_analyze(), "security", "--offline=true", f"--threshold={int(EXPOSURE_OK * 10)}",
                               str(unit)], capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for egov-agent.service: (\d+\.\d) (\w+)", security.stdout)
    assert level, security.stdout + security.stderr
    print(f"systemd-analyze security: exposure {level.group(1)} {level.group(2)}")  # shown in CI with -s / -rA
    assert security.returncode == 0 and float(level.group(1)) <= EXPOSURE_OK and level.group(2) == "OK"

    s = settings(UNIT)
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"] and s["WatchdogSec"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["CapabilityBoundingSet"] == ["CAP_NET_RAW"] and s["AmbientCapabilities"] == ["CAP_NET_RAW"]
    for key in ("NoNewPrivileges", "DynamicUser", "PrivateTmp", "MemoryDenyWriteExecute"):
        assert s[key] == ["yes"], key
    # The agent writes only its state directory (/var/lib/egov-agent, private to the dynamic user).
    assert s["ProtectSystem"] == ["strict"] and "ReadWritePaths" not in s
    assert s["StateDirectory"] == ["egov-agent"] and s["StateDirectoryMode"] == ["0700"]
    assert "--storage.state-file /var/lib/egov-agent/state.db" in s["ExecStart"][0]
    assert "--web.config.file /etc/egov-agent/web.yml" in s["ExecStart"][0]


PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1


def _deny_write_execute() -> None:
    """What MemoryDenyWriteExecute=yes enforces, with the kernel's own switch (Linux 6.3+) instead of systemd's
    seccomp filter: no mapping may become writable and executable, nor executable after being writable."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def test_agent_runs_with_memory_deny_write_execute(tmp_path: Path, tcp_peers) -> None:
    probe = subprocess.run([sys.executable, "-c", "import ctypes; l = ctypes.CDLL(None); "
                            f"raise SystemExit(l.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0))"],
                           timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"kernel {os.uname().release} has no PR_SET_MDWE (Linux 6.3+)")
    # The protection really bites: a W+X mapping is refused inside such a process.
    mmap_check = subprocess.run([sys.executable, "-c", "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | "
                                 "mmap.PROT_WRITE | mmap.PROT_EXEC)"], preexec_fn=_deny_write_execute,
                                capture_output=True, text=True, timeout=30)
    assert mmap_check.returncode != 0 and "PermissionError" in mmap_check.stderr

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    import bcrypt

    web = web_config(tmp_path / "web.yml", "server.pem", "server.key",
                     {"prometheus": bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()})
    port = tcp_peers.listening("127.0.0.1")
    province = Province(levels=["province"])
    province.collector("tcp", interval="1s", timeout="0.5s").collector("host", interval="1s", timeout="0.9s")
    province.target("sys-a", "p", "tcp", params={"host": "127.0.0.1", "port": port})
    config = province.target("self", "p", "host", params={"mountpoints": ["/"]}).write(tmp_path / "province.yml")
    agent = Agent(tmp_path, config, ["--web.config.file", str(web)], scheme="https", preexec=_deny_write_execute)
    try:
        agent.wait_ready(auth=("prometheus", "pw"), verify=str(tmp_path / "ca.pem"))
        body = requests.get(agent.base + "/metrics", auth=("prometheus", "pw"), verify=str(tmp_path / "ca.pem"),
                            timeout=5).text
        assert 'egov_target_up{collector="tcp"' in body and 'target="self"' in body
    finally:
        assert agent.stop() == 0
    assert "Traceback" not in agent.text()


def test_install_script_stages_unit_and_example_configuration(tmp_path: Path) -> None:
    """scripts/install-service into a staging root (DESTDIR), without the virtualenv (SKIP_VENV=1: tested by hand,
    it downloads the dependencies)."""
    root = tmp_path / "root"
    env = {**os.environ, "DESTDIR": str(root), "PREFIX": "/srv/egov", "SKIP_VENV": "1"}
    first = subprocess.run([str(REPO / "scripts" / "install-service")], env=env, capture_output=True, text=True,
                           timeout=60)
    assert first.returncode == 0, first.stderr
    assert "systemctl enable --now egov-agent" in first.stdout
    assert "systemctl enable --now egov-agent-report.timer" in first.stdout
    report = (root / "etc/systemd/system/egov-agent-report.service").read_text()
    assert "ExecStart=/srv/egov/venv/bin/egov-agent report" in report and "--period previous" in report
    assert "OnCalendar=*-03,06,09,12-10 06:00:00 Asia/Ho_Chi_Minh" in (
        root / "etc/systemd/system/egov-agent-report.timer").read_text()
    assert not (root / "etc/systemd/system/timers.target.wants").exists()  # installed, not enabled
    unit = (root / "etc/systemd/system/egov-agent.service").read_text()
    assert "ExecStart=/srv/egov/venv/bin/egov-agent run" in unit and "/opt/egov-agent" not in unit
    conf = root / "etc/egov-agent"
    assert (conf / "credentials").stat().st_mode & 0o777 == 0o700
    assert (conf / "agent.env").stat().st_mode & 0o777 == 0o600
    check = subprocess.run([sys.executable, "-m", "agent.app.cli", "check-config", str(conf / "agent.yml"),
                            "--skip-secrets", "--web.config.file", str(conf / "web.yml")],
                           capture_output=True, text=True, cwd=REPO, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "web.yml: OK — HTTP, basic auth off" in check.stdout
    # No install makes a real province live by itself: agent.yml probes nothing; the provinces are examples.
    assert ": 1 units, 0 targets, 0 collectors, 0 KPIs" in check.stdout
    assert (root / "srv/egov/examples/provinces/bac-giang.yml").is_file()
    assert (root / "srv/egov/examples/provinces/bac-giang/wan.yml").is_file()
    assert 'EGOV_AGENT_ARGS=""' in (root / "etc/default/egov-agent").read_text()

    (conf / "agent.yml").write_text("# the operator's own\n")
    again = subprocess.run([str(REPO / "scripts" / "install-service")], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "kept the existing" in again.stdout
    assert (conf / "agent.yml").read_text() == "# the operator's own\n"


def test_the_report_timer_runs_after_each_cut_off(tmp_path: Path) -> None:
    """The report's unit and timer verify, and the timer falls on the 10th after each quarter's cut-off
    (59/KH-UBND: data close on the 9th) before the 15th deadline."""
    agent = Path(sys.executable).parent / "egov-agent"
    for name in ("egov-agent-report.service", "egov-agent-report.timer"):
        text = (REPO / "config" / "systemd" / name).read_text().replace(INSTALLED_VENV, str(agent.parent.parent))
        (tmp_path / name).write_text(text)
    verify = subprocess.run([systemd_analyze(), "verify", "--man=no", str(tmp_path / "egov-agent-report.service"),
                             str(tmp_path / "egov-agent-report.timer")], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stdout + verify.stderr
    calendar = settings(tmp_path / "egov-agent-report.timer")["OnCalendar"][0]
    done = subprocess.run([systemd_analyze(), "calendar", "--iterations=4", "--base-time=2026-12-03 00:00 UTC",
                           calendar], capture_output=True, text=True, timeout=60, env={**os.environ, "TZ": "UTC"})
    assert done.returncode == 0, done.stderr
    runs = re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", done.stdout)
    assert runs[:4] == ["2026-12-09 23:00:00 UTC", "2027-03-09 23:00:00 UTC", "2027-06-09 23:00:00 UTC",
                        "2027-09-09 23:00:00 UTC"]  # 06:00 on the 10th in Vietnam (UTC+7)
