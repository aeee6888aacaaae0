"""The Debian package, installed for real on this machine and purged (issue #13).

CHANGES THE MACHINE: needs root; installs egov-agent with apt-get (files in /opt/egov-agent, /etc/egov-agent,
/etc/default/egov-agent, /lib/systemd/system) and purges it again, also when an assertion fails. Skipped when
the package, or any of those paths, is already there: a real install is never touched.

scripts/build-deb makes the package; apt-get installs it (postinst makes the venv from the bundled wheels,
offline); the units pass ``systemd-analyze verify``; nothing is enabled and agent.yml probes nothing;
``scripts/install-service`` installs offline from the package's wheelhouse; ``apt-get purge`` leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import REPO

PATHS = [Path("/opt/egov-agent"), Path("/etc/egov-agent"), Path("/etc/default/egov-agent"),
         Path("/lib/systemd/system/egov-agent.service"), Path("/lib/systemd/system/egov-agent-report.service"),
         Path("/lib/systemd/system/egov-agent-report.timer")]
UNITS = PATHS[3:]
APT_SECONDS = 900
ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def _installed() -> bool:
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "egov-agent"], capture_output=True, text=True)
    return "installed" in status.stdout or "config-files" in status.stdout


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=APT_SECONDS, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def machine() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("installs a Debian package: needs root")
    for tool in ("dpkg-deb", "apt-get", "systemd-analyze"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    if _installed() or any(p.exists() for p in PATHS):
        pytest.skip("egov-agent is installed on this machine (or its paths exist): not touching it")
    try:
        yield
    finally:
        if _installed():
            _run(["apt-get", "purge", "-y", "-q", "egov-agent"], env=ENV)


def test_deb_installs_disabled_inert_and_purges_clean(machine: None, tmp_path: Path) -> None:
    built = _run([str(REPO / "scripts" / "build-deb"), str(tmp_path / "out")], env={**ENV, "PYTHON": sys.executable})
    assert built.returncode == 0, built.stderr[-3000:]
    deb = Path(built.stdout.strip().splitlines()[-1])
    assert deb.name.startswith("egov-agent_") and deb.suffix == ".deb"

    installed = _run(["apt-get", "install", "-y", "-q", f"./{deb.name}"], cwd=deb.parent, env=ENV)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    assert "not enabled" in installed.stdout

    agent = "/opt/egov-agent/venv/bin/egov-agent"
    version = _run([agent, "run", "--version"])
    assert version.returncode == 0 and version.stdout.startswith("egov-agent "), version
    verify = _run(["systemd-analyze", "verify", *map(str, UNITS)])
    assert verify.returncode == 0, verify.stderr
    assert "EnvironmentFile=-/etc/default/egov-agent" in UNITS[0].read_text()
    assert Path("/etc/egov-agent/agent.env").stat().st_mode & 0o777 == 0o600
    assert Path("/etc/egov-agent/credentials").stat().st_mode & 0o777 == 0o700
    assert 'EGOV_AGENT_ARGS=""' in Path("/etc/default/egov-agent").read_text()
    conffiles = set(_run(["dpkg-query", "--showformat=${Conffiles}", "-W", "egov-agent"]).stdout.split())
    assert {"/etc/egov-agent/agent.yml", "/etc/egov-agent/web.yml", "/etc/default/egov-agent"} <= conffiles

    # Installed, not enabled, and the configuration in place probes nothing (no province goes live by itself).
    assert not Path("/etc/systemd/system/multi-user.target.wants/egov-agent.service").exists()
    assert _run(["systemctl", "is-enabled", "egov-agent.service"]).stdout.strip() == "disabled"
    assert _run(["systemctl", "is-enabled", "egov-agent-report.timer"]).stdout.strip() == "disabled"
    checked = _run([agent, "check-config", "/etc/egov-agent/agent.yml", "--web.config.file", "/etc/egov-agent/web.yml"])
    assert checked.returncode == 0 and ": 1 units, 0 targets, 0 collectors, 0 KPIs" in checked.stdout, checked
    example = _run([agent, "check-config", "--skip-secrets", "/opt/egov-agent/examples/provinces/bac-giang.yml"])
    assert example.returncode == 0 and "1170 targets" in example.stdout, example.stderr[-2000:]

    # scripts/install-service, offline from the package's wheelhouse: no index is reachable.
    stage = tmp_path / "stage"
    offline = _run([str(REPO / "scripts" / "install-service")],
                   env={**ENV, "DESTDIR": str(stage), "WHEELHOUSE": "/opt/egov-agent/wheelhouse",
                        "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""})
    assert offline.returncode == 0, offline.stderr[-3000:]
    assert "(offline)" in offline.stdout
    staged = _run([str(stage / "opt/egov-agent/venv/bin/egov-agent"), "--version"])
    assert staged.returncode == 0 and staged.stdout.startswith("egov-agent "), staged

    purged = _run(["apt-get", "purge", "-y", "-q", "egov-agent"], env=ENV)
    assert purged.returncode == 0, purged.stderr[-2000:]
    assert not _installed()
    assert [str(p) for p in PATHS if p.exists()] == []
