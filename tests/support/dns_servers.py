"""Real DNS servers for the dns collector's tests: Debian's unbound as the province's resolver, nsd as the
authoritative server of a DNSSEC-signed zone (signed by ldns-signzone in the test), each started in the
foreground with a configuration in the test's folder on a loopback address of 127.0.25.0/24."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.query

RESOLVER, AUTHORITATIVE, NOBODY = "127.0.25.201", "127.0.25.202", "127.0.25.203"  # the lab tests take the lower half
START_TIMEOUT = 15.0


def free_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host`` (a DNS server binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError(f"no port free for UDP and TCP on {host}")


def need(*programs: str) -> None:
    import pytest

    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/test installs them)")


def wait_answering(host: str, port: int, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers a query for ``name`` (any response code), or fail with its log."""
    deadline = time.monotonic() + START_TIMEOUT
    query = dns.message.make_query(name, "SOA")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.stem} exited with {process.returncode}: {log.read_text()}")
        try:
            dns.query.udp(query, host, timeout=0.3, port=port)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{log.stem} did not answer within {START_TIMEOUT}s: {log.read_text()}")


@contextmanager
def running(args: list[str], log: Path, host: str, port: int, name: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_answering(host, port, name, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def unbound_config(folder: Path, port: int, server_lines: list[str], tail: str = "") -> Path:
    """A foreground unbound on RESOLVER:port, logging to stderr, with no trust anchor unless given."""
    lines = [
        "server:", f"    interface: {RESOLVER}", f"    port: {port}", "    do-daemonize: no", '    username: ""',
        '    chroot: ""', f'    directory: "{folder}"', '    pidfile: ""', "    use-syslog: no", '    logfile: ""',
        "    verbosity: 1", "    do-ip6: no", "    access-control: 127.0.0.0/8 allow", "    ede: yes",
        "    num-threads: 1", "    outgoing-range: 64", "    so-reuseport: no",
        *(f"    {line}" for line in server_lines),
    ]
    path = folder / "unbound.conf"
    path.write_text("\n".join(lines) + "\nremote-control:\n    control-enable: no\n" + tail, encoding="utf-8")
    subprocess.run(["unbound-checkconf", str(path)], check=True, capture_output=True, timeout=30)
    return path


def signed_zone(folder: Path, zone: str, records: list[str], forged: dict[str, str]) -> tuple[Path, Path]:
    """The zone signed with a fresh ECDSA P-256 key (ldns-signzone), then each ``forged`` name's A record
    changed after signing (its signature no longer matches: bogus). Returns (signed zone file, trust anchor)."""
    unsigned = folder / f"{zone}.zone"
    soa = f"{zone}. 300 IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300"
    unsigned.write_text("\n".join([soa, f"{zone}. 300 IN NS ns1.{zone}.", f"ns1.{zone}. 300 IN A {AUTHORITATIVE}",
                                   *records]) + "\n", encoding="utf-8")
    keyname = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone], cwd=folder, check=True,
                             capture_output=True, text=True, timeout=60).stdout.strip()
    subprocess.run(["ldns-signzone", "-n", "-f", f"{unsigned}.signed", str(unsigned), keyname], cwd=folder,
                   check=True, capture_output=True, timeout=60)
    signed = Path(f"{unsigned}.signed")
    text = signed.read_text(encoding="utf-8")
    for name, (old, new) in ((n, pair.split(">")) for n, pair in forged.items()):
        line = next(li for li in text.splitlines() if li.startswith(f"{name}.") and "\tA\t" in li)
        assert line.endswith(old), line
        text = text.replace(line, line[: -len(old)] + new)
    signed.write_text(text, encoding="utf-8")
    return signed, folder / f"{keyname}.key"


def nsd_config(folder: Path, port: int, zone: str, zonefile: Path) -> Path:
    path = folder / "nsd.conf"
    path.write_text(f"""\
server:
    ip-address: {AUTHORITATIVE}@{port}
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{folder}"
    database: ""
    zonelistfile: "{folder}/zone.list"
    xfrdfile: "{folder}/xfrd.state"
    xfrdir: "{folder}"
    pidfile: "{folder}/nsd.pid"
    logfile: "{folder}/nsd.log"
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{zonefile}"
""", encoding="utf-8")
    subprocess.run(["nsd-checkconf", str(path)], check=True, capture_output=True, timeout=30)
    return path
