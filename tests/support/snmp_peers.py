"""Real SNMP peers and readers for the snmp tests: net-snmp's tools, snmpsim, snmpd, broken UDP peers."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
# IF-MIB columns the collector reads, by the name of the family it exports them as.
COLUMNS = {
    "oper": "1.3.6.1.2.1.2.2.1.8",
    "admin": "1.3.6.1.2.1.2.2.1.7",
    "in_octets": "1.3.6.1.2.1.31.1.1.1.6",
    "out_octets": "1.3.6.1.2.1.31.1.1.1.10",
    "speed": "1.3.6.1.2.1.31.1.1.1.15",
    "in_errors": "1.3.6.1.2.1.2.2.1.14",
    "out_errors": "1.3.6.1.2.1.2.2.1.20",
}
FAMILY = {"oper": "snmp_if_oper_status", "admin": "snmp_if_admin_status", "in_octets": "snmp_if_in_octets",
          "out_octets": "snmp_if_out_octets", "in_errors": "snmp_if_in_errors", "out_errors": "snmp_if_out_errors",
          "speed": "snmp_if_speed_bytes_per_second"}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: install Debian's snmp and snmpd packages (scripts/test does)")
    return path


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _parse(output: str) -> dict[str, tuple[str, str]]:
    """net-snmp output with -On -Oe: ``.1.3.6... = Counter64: 123`` -> {"1.3.6...": ("Counter64", "123")};
    ``Timeticks: (233425120) 27 days, ...`` gives ("Timeticks", "233425120")."""
    values = {}
    for line in output.splitlines():
        oid, sep, rest = line.partition(" = ")
        if not sep:
            continue
        kind, _, value = rest.partition(": ")
        if kind == "Timeticks":
            value = value.partition(")")[0].lstrip("(")
        values[oid.lstrip(".")] = (kind, value.strip().strip('"'))
    return values


def net_snmp(tool: str, auth: list[str], target: str, *oids: str) -> dict[str, tuple[str, str]]:
    """Run snmpget/snmpwalk/snmpbulkwalk; ``auth`` is e.g. ["-v2c", "-c", community]."""
    result = subprocess.run([need(tool), *auth, "-On", "-Oe", "-t", "2", "-r", "1", target, *oids],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"{tool} failed: {result.stderr}"
    return _parse(result.stdout)


async def net_snmp_async(tool: str, auth: list[str], target: str, *oids: str) -> dict[str, tuple[str, str]]:
    """The same from a test's event loop, so an in-process simulator keeps answering meanwhile."""
    proc = await asyncio.create_subprocess_exec(need(tool), *auth, "-On", "-Oe", "-t", "2", "-r", "1",
                                                target, *oids, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, f"{tool} failed: {err.decode()}"
    return _parse(out.decode())


def number(values: dict[str, tuple[str, str]], oid: str) -> int:
    kind, value = values[oid]
    assert kind in ("Counter64", "Counter32", "Gauge32", "INTEGER", "Timeticks"), (oid, kind, value)
    return int(value)


def wait_answering(auth: list[str], target: str, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the SNMP peer exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        result = subprocess.run([need("snmpget"), *auth, "-t", "0.3", "-r", "0", target, SYS_UPTIME],
                                capture_output=True, text=True, timeout=10, check=False)
        if result.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"the SNMP peer did not answer within {timeout}s:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def snmpsim_recordings() -> Path:
    """snmpsim's bundled recordings (data/recorded/*.snmprec), from the installed package."""
    import snmpsim

    path = Path(snmpsim.__file__).resolve().parent / "data" / "recorded"
    assert (path / "linux-full-walk.snmprec").exists(), f"snmpsim's recordings not found under {path}"
    return path


@contextmanager
def snmpsim(data_dir: Path, tmp: Path) -> Iterator[tuple[str, int]]:
    """snmpsim-command-responder on 127.0.0.1 and a free port; each ``<community>.snmprec`` in
    ``data_dir`` is served for the v2c community of that name."""
    port = free_udp_port()
    log = tmp / "snmpsim.log"
    beside = Path(sys.executable).parent / "snmpsim-command-responder"  # the venv's, installed by .[test]
    exe = str(beside) if beside.exists() else shutil.which("snmpsim-command-responder")
    if exe is None:
        pytest.fail("snmpsim-command-responder not found: pip install -e '.[test]' (scripts/test does)")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, f"--data-dir={data_dir}", f"--agent-udpv4-endpoint=127.0.0.1:{port}",
             f"--cache-dir={tmp / 'snmpsim-cache'}", "--log-level=error"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"},
        )
    try:
        community = sorted(p.stem for p in data_dir.glob("*.snmprec"))[0]
        wait_answering(["-v2c", "-c", community], f"127.0.0.1:{port}", proc, log)
        yield "127.0.0.1", port
    finally:
        stop(proc)


@contextmanager
def snmpd(config: str, tmp: Path, ready_auth: list[str]) -> Iterator[tuple[str, int]]:
    """net-snmp's snmpd in the foreground, reading only ``config`` (plus agentAddress), state in ``tmp``;
    ready once a GET with ``ready_auth`` (net-snmp options) is answered."""
    port = free_udp_port()
    conf = tmp / "snmpd.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\n" + config, encoding="utf-8")
    log = tmp / "snmpd.log"
    (tmp / "snmpd-state").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [need_snmpd(), "-f", "-C", "-c", str(conf), "-Lf", str(log), "-p", str(tmp / "snmpd.pid"),
         "-I", "-smux,mteTrigger,mteTriggerConf"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SNMP_PERSISTENT_DIR": str(tmp / "snmpd-state")},
    )
    try:
        wait_answering(ready_auth, f"127.0.0.1:{port}", proc, log)
        yield "127.0.0.1", port
    finally:
        stop(proc)


def need_snmpd() -> str:
    for path in (shutil.which("snmpd"), "/usr/sbin/snmpd"):
        if path and Path(path).exists():
            return path
    pytest.fail("snmpd not found: install Debian's snmpd package (scripts/test does)")


class SilentPeer:
    """A bound UDP port that reads requests and never answers: a device whose link is dead."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


class _Garbage(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # A BER SEQUENCE header whose length runs past the datagram: no decoder can make a message of it.
        self.transport.sendto(b"\x30\x82\x01\x00\x02\x01\x01\x04\x06public\xa2\xff", addr)  # type: ignore[attr-defined]


async def garbage_peer() -> tuple[asyncio.DatagramTransport, int]:
    """A UDP peer that answers every request with a malformed SNMP message."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(_Garbage, local_addr=("127.0.0.1", 0))
    return transport, transport.get_extra_info("sockname")[1]  # type: ignore[return-value]


class UdpRelay:
    """A UDP relay standing where a device's address is: requests from the agent go on to the real
    SNMP agent at ``upstream`` and its replies come back from the relay's own address. ``on_request``
    sees each request (an on-path observer); ``on_reply`` turns each genuine reply into the datagrams
    actually sent back (none, a mutant, a shifted copy...), ``delay`` seconds late."""

    def __init__(self, upstream: tuple[str, int], on_request: Callable[[bytes, tuple[str, int]], None] | None = None,
                 on_reply: Callable[[bytes], list[bytes]] | None = None, delay: float = 0.0) -> None:
        self.upstream = upstream
        self.on_request = on_request
        self.on_reply = on_reply or (lambda data: [data])
        self.delay = delay
        self.requests: list[bytes] = []
        self.front: asyncio.DatagramTransport | None = None
        self.back: asyncio.DatagramTransport | None = None
        self.client: tuple[str, int] | None = None

    async def start(self, host: str, upstream_side: str | None = None) -> tuple[str, int]:
        """Listen on ``host``; talk to the upstream agent from ``upstream_side`` (default: ``host``)."""
        loop = asyncio.get_running_loop()
        relay = self

        class Front(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                relay.client = addr
                relay.requests.append(data)
                if relay.on_request is not None:
                    relay.on_request(data, addr)
                if relay.back is not None:
                    relay.back.sendto(data, relay.upstream)

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                for out in relay.on_reply(data):
                    if relay.delay:
                        loop.call_later(relay.delay, relay._send, out)
                    else:
                        relay._send(out)

        self.front, _ = await loop.create_datagram_endpoint(Front, local_addr=(host, 0))
        self.back, _ = await loop.create_datagram_endpoint(Back, local_addr=(upstream_side or host, 0))
        return host, self.front.get_extra_info("sockname")[1]

    def _send(self, data: bytes) -> None:
        if self.front is not None and not self.front.is_closing() and self.client is not None:
            self.front.sendto(data, self.client)

    def close(self) -> None:
        for transport in (self.front, self.back):
            if transport is not None:
                transport.close()
