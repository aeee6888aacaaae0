"""ICMP on loopback, where every 127.x address answers: the real agent, its sockets and its settings."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from support.exposition import parse_samples, sample
from support.icmp_netns import require_netns
from support.paths import AGENT, REPO
from support.province import Province


def province(tmp_path: Path, targets: dict[str, str], settings: dict | None = None,
             params: dict | None = None) -> Path:
    """Commune c1 pinging each of ``targets`` (id: address), 5 echoes 20 ms apart unless ``params`` says."""
    p = Province().unit("c1", "Xã Một").collector("icmp", timeout="2s", settings=settings or {})
    for target_id, host in targets.items():
        p.target(target_id, "c1", "icmp", params={"host": host, **(params or {"count": 5, "interval": 0.02})})
    return p.write(tmp_path / "icmp.yml")


def once(path: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(prefix or []), *AGENT, "once", "--config", str(path), "--format", "prometheus"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_loopback_answers_five_echoes(tmp_path):
    targets = {"lo": "127.0.0.1", "lab": "127.77.0.9", "named": "localhost"}
    if has_ipv6_loopback():
        targets["lo6"] = "::1"
    result = once(province(tmp_path, targets))
    assert result.returncode == 0, result.stderr
    s = parse_samples(result.stdout)
    for tid in targets:
        assert sample(s, "egov_target_up", target=tid, collector="icmp", commune="c1") == 1
        assert sample(s, "egov_icmp_echo_requests_total", target=tid) == 5
        assert sample(s, "egov_icmp_echo_replies_total", target=tid) == 5
        assert sample(s, "egov_icmp_loss_ratio", target=tid) == 0
        low, avg, high = (sample(s, "egov_icmp_rtt_seconds", target=tid, stat=k) for k in ("min", "avg", "max"))
        assert 0 < low <= avg <= high < 1.0, (tid, low, avg, high)


def test_bad_settings_and_params_are_located_errors(tmp_path):
    path = province(tmp_path, {"r": "127.0.0.1"}, settings={"privileged": "sometimes", "up_rule": {"max_loss": 1.5}},
                    params={"count": 0, "interval": 0.02})
    result = subprocess.run([*AGENT, "check-config", str(path)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    for key in ("collectors.icmp.settings.privileged", "collectors.icmp.settings.up_rule.max_loss",
                "targets[0].params.count"):
        assert key in result.stderr, result.stderr


@pytest.fixture
def bare_namespace():
    """An empty network namespace (own loopback, own ping_group_range) to try socket rights in."""
    require_netns()
    name = f"egovtest-{os.urandom(3).hex()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"ip netns add failed here: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def without_net_raw(namespace: str, ping_groups: str) -> list[str]:
    """Run in ``namespace`` with CAP_NET_RAW dropped and ``net.ipv4.ping_group_range`` set (it is per namespace)."""
    subprocess.run(["ip", "netns", "exec", namespace, "sysctl", "-qw", f"net.ipv4.ping_group_range={ping_groups}"],
                   check=True)
    return ["ip", "netns", "exec", namespace, "setpriv", "--bounding-set", "-net_raw", "--"]


def test_without_cap_net_raw_ping_sockets_take_over(tmp_path, bare_namespace):
    gid = os.getgid()
    prefix = without_net_raw(bare_namespace, f"{gid} {gid}")
    result = once(province(tmp_path, {"lo": "127.0.0.1"}, settings={"privileged": "auto"}), prefix)
    assert result.returncode == 0, result.stderr
    s = parse_samples(result.stdout)
    assert sample(s, "egov_target_up", target="lo") == 1
    assert sample(s, "egov_icmp_echo_replies_total", target="lo") == 5
    assert "IPv4 probes use unprivileged ICMP sockets" in result.stderr

    result = once(province(tmp_path, {"lo": "127.0.0.1"}, settings={"privileged": True}), prefix)
    s = parse_samples(result.stdout)
    assert sample(s, "egov_target_up", target="lo") == 0
    assert sample(s, "egov_target_probe_failures_total", target="lo", reason="permission") == 1


def test_without_any_icmp_right_the_reason_is_permission(tmp_path, bare_namespace):
    prefix = without_net_raw(bare_namespace, "1 0")  # the kernel's default: no group may open ping sockets
    result = once(province(tmp_path, {"lo": "127.0.0.1"}), prefix)
    assert result.returncode == 0, result.stderr
    s = parse_samples(result.stdout)
    assert sample(s, "egov_target_up", target="lo") == 0
    assert sample(s, "egov_target_probe_failures_total", target="lo", reason="permission") == 1
    assert "AmbientCapabilities=CAP_NET_RAW" in result.stderr
    assert "ping_group_range" in result.stderr

