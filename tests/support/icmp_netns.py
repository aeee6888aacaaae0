"""A simulated WAN router in a network namespace the test makes itself, and faults on its link.

The router namespace (``egovtest-<random>``) is joined to this host by a veth pair and a private
/29 in 10.231.0.0/16 chosen to overlap nothing the host already routes: .1 on this side, the
router on .2, and .4 owned by nobody (a router that is simply gone). Traffic never leaves the
machine. Packet loss uses the kernel's ``netem`` qdisc where the kernel has it; kernels built
without it (CONFIG_NET_SCH_NETEM unset, as on the machine this was written on) get the same random loss
from an nftables rule inside the namespace (``numgen random mod 100 < N drop``). Neither touches
the host's own qdiscs or rulesets.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import shutil
import subprocess

import pytest

POOL = ipaddress.ip_network("10.231.0.0/16")


def require_netns() -> None:
    """Skip, saying why, where namespaces cannot be made; on root Linux with iproute2 they must run."""
    if os.geteuid() != 0:
        pytest.skip("needs root: ip netns, veth and nftables need CAP_SYS_ADMIN and CAP_NET_ADMIN")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip (Debian package iproute2)")


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _taken_networks() -> list[ipaddress.IPv4Network]:
    taken = []
    for entry in json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = entry.get("dst", "default")
        if dst != "default":
            taken.append(ipaddress.ip_network(dst, strict=False))
    for link in json.loads(_run("ip", "-j", "-4", "addr", "show").stdout or "[]"):
        for info in link.get("addr_info", []):
            taken.append(ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return taken


def _free_subnet() -> ipaddress.IPv4Network:
    taken = _taken_networks()
    subnets = list(POOL.subnets(new_prefix=29))
    for _ in range(50):
        candidate = random.choice(subnets)
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise RuntimeError(f"no free /29 in {POOL}")


class RouterNamespace:
    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.name = f"egovtest-{tag}"
        self.host_if = f"egv{tag}h"
        self.ns_if = f"egv{tag}n"
        self.subnet = _free_subnet()
        hosts = list(self.subnet.hosts())
        self.host_address, self.router, self.absent = str(hosts[0]), str(hosts[1]), str(hosts[3])
        self.loss_backend: str | None = None
        self._created = False

    def ns(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run("ip", "netns", "exec", self.name, *cmd, check=check)

    def create(self) -> None:
        result = _run("ip", "netns", "add", self.name, check=False)
        if result.returncode != 0:
            pytest.skip(f"ip netns add failed here: {result.stderr.strip()}")
        self._created = True
        self.ns("ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", self.name)
        _run("ip", "addr", "add", f"{self.host_address}/{self.subnet.prefixlen}", "dev", self.host_if)
        _run("ip", "link", "set", self.host_if, "up")
        self.ns("ip", "addr", "add", f"{self.router}/{self.subnet.prefixlen}", "dev", self.ns_if)
        self.ns("ip", "link", "set", self.ns_if, "up")

    def destroy(self) -> None:
        """Remove everything made, whatever state a failed test left it in (deleting one veth end removes both)."""
        _run("ip", "link", "del", self.host_if, check=False)
        if self._created:
            _run("ip", "netns", "del", self.name, check=False)

    def lose(self, percent: int) -> None:
        """Drop ``percent`` % of the packets on the router's link, at random."""
        self.heal()
        netem = self.ns("tc", "qdisc", "replace", "dev", self.ns_if, "root", "netem", "loss", f"{percent}%",
                        check=False) if shutil.which("tc") else None
        if netem is not None and netem.returncode == 0:
            self.loss_backend = "netem"
            return
        if shutil.which("nft") is None:
            pytest.skip("random loss needs the kernel's netem qdisc or nftables (Debian package nftables)")
        rule = "drop" if percent >= 100 else f"numgen random mod 100 < {percent} drop"
        ruleset = ("table inet egovtest_fault {\n"
                   "  chain input { type filter hook input priority 0; policy accept;\n"
                   f"    icmp type echo-request {rule}\n  }}\n}}\n")
        result = subprocess.run(["ip", "netns", "exec", self.name, "nft", "-f", "-"], input=ruleset,
                                capture_output=True, text=True, timeout=20)
        if result.returncode != 0:
            raise RuntimeError(f"nft in {self.name} failed: {result.stderr.strip()}")
        self.loss_backend = "nftables"

    def heal(self) -> None:
        if self.loss_backend == "netem":
            self.ns("tc", "qdisc", "del", "dev", self.ns_if, "root", check=False)
        elif self.loss_backend == "nftables":
            self.ns("nft", "delete", "table", "inet", "egovtest_fault", check=False)
        self.loss_backend = None

    def set_link(self, up: bool) -> None:
        self.ns("ip", "link", "set", self.ns_if, "up" if up else "down")


@pytest.fixture
def router_ns():
    require_netns()
    router = RouterNamespace()
    try:
        router.create()
        yield router
    finally:
        router.destroy()
