"""The Go exporters bench/wan.py compares the agent with, driven the way Prometheus drives them.

``prometheus-blackbox-exporter`` (Debian) with an ``icmp`` module (one echo request per probe, the
prober's design) and ``prometheus-snmp-exporter`` (Debian, 0.21: the community sits in the module;
0.23 and later split it into ``auths:``, and both layouts are written here by version) with a
hand-written module reading the same objects as the agent's snmp collector: sysUpTime and the
uplink's ifOperStatus, ifAdminStatus, ifHCIn/OutOctets, ifHighSpeed, ifIn/OutErrors, labelled with
ifName/ifAlias (``uplink``: one GET of the uplink's row, as the agent does; ``all``: GETBULK walks
of every interface, as the agent's ``all_interfaces``). The MIB text IF-MIB needs is not on this
machine (Debian ships it in non-free snmp-mibs-downloader), so ``prometheus-snmp-generator`` cannot
run offline here; the module is written directly in the exporter's configuration format.

A cycle is one HTTP request per target (``/probe?target=…&module=icmp``,
``/snmp?target=host:port&module=…``), at most ``concurrency`` at a time on kept-alive connections
(a thread each, like Prometheus's concurrent scrapes), with Prometheus's
``X-Prometheus-Scrape-Timeout-Seconds`` header; each answer is parsed with prometheus_client's
parser to tell up from down.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

BLACKBOX = "prometheus-blackbox-exporter"
SNMP_EXPORTER = "prometheus-snmp-exporter"
SYS_UPTIME = "1.3.6.1.2.1.1.3"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
# The agent's COLUMNS (collectors/snmp.py): name, OID, metric type.
IF_COLUMNS = [
    ("ifOperStatus", "1.3.6.1.2.1.2.2.1.8", "gauge"),
    ("ifAdminStatus", "1.3.6.1.2.1.2.2.1.7", "gauge"),
    ("ifHCInOctets", "1.3.6.1.2.1.31.1.1.1.6", "counter"),
    ("ifHCOutOctets", "1.3.6.1.2.1.31.1.1.1.10", "counter"),
    ("ifHighSpeed", "1.3.6.1.2.1.31.1.1.1.15", "gauge"),
    ("ifInErrors", "1.3.6.1.2.1.2.2.1.14", "counter"),
    ("ifOutErrors", "1.3.6.1.2.1.2.2.1.20", "counter"),
]


def available() -> list[str]:
    """The exporters missing on this machine (Debian packages of the same names)."""
    return [name for name in (BLACKBOX, SNMP_EXPORTER) if shutil.which(name) is None]


def version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)


def blackbox_config(timeout: float) -> dict:
    return {"modules": {"icmp": {"prober": "icmp", "timeout": f"{timeout:g}s",
                                 "icmp": {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": False}}}}


def snmp_config(community: str, scope: str, timeout: float, retries: int, max_repetitions: int,
                exporter_version: tuple[int, ...]) -> dict:
    """A module ``egov_wan`` for the agent's subset of IF-MIB and SNMPv2-MIB (0.23+: auth ``lab``)."""
    lookups = [{"labels": ["ifIndex"], "labelname": "ifName", "oid": IF_NAME, "type": "DisplayString"},
               {"labels": ["ifIndex"], "labelname": "ifAlias", "oid": IF_ALIAS, "type": "DisplayString"}]
    metrics = [{"name": "sysUpTime", "oid": SYS_UPTIME, "type": "gauge", "help": "sysUpTime (centiseconds)."}]
    metrics += [{"name": name, "oid": oid, "type": kind, "help": f"{name} (IF-MIB).",
                 "indexes": [{"labelname": "ifIndex", "type": "gauge"}],
                 "lookups": [{**x, "labels": ["ifIndex"]} for x in lookups]}  # copies: no YAML anchors
                for name, oid, kind in IF_COLUMNS]
    module: dict = {"metrics": metrics, "retries": retries, "timeout": f"{timeout:g}s",
                    "max_repetitions": max_repetitions}
    if scope == "uplink":  # ifIndex 1, the agent's uplink: one GET, names included (the exporter has no cache)
        module["get"] = [f"{SYS_UPTIME}.0", *[f"{oid}.1" for _, oid, _ in IF_COLUMNS], f"{IF_NAME}.1", f"{IF_ALIAS}.1"]
    else:
        module["get"] = [f"{SYS_UPTIME}.0"]
        module["walk"] = [oid for _, oid, _ in IF_COLUMNS] + [IF_NAME, IF_ALIAS]
    auth = {"community": community, "version": 2}
    if exporter_version >= (0, 23, 0):
        return {"auths": {"lab": auth}, "modules": {"egov_wan": module}}
    module["version"] = 2
    module["auth"] = {"community": community}
    return {"egov_wan": module}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Exporter:
    """A Go exporter on a loopback port, its configuration in a private directory."""

    binary: str
    config: Path
    log: Path
    proc: subprocess.Popen | None = None
    port: int = 0

    def start(self, timeout: float = 20.0) -> None:
        self.port = free_port()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([self.binary, f"--config.file={self.config}",
                                          f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.binary} exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/metrics", timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{self.binary} not ready within {timeout:g}s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def write_configs(directory: Path, community: str, snmp_scope: str, icmp_timeout: float, snmp_timeout: float,
                  snmp_retries: int, max_repetitions: int) -> tuple[Exporter, Exporter]:
    """Both exporters' configurations (the community readable by this user only)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    blackbox = directory / "blackbox.yml"
    blackbox.write_text(yaml.safe_dump(blackbox_config(icmp_timeout)), encoding="utf-8")
    snmp = directory / "snmp.yml"
    fd = os.open(snmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(snmp_config(community, snmp_scope, snmp_timeout, snmp_retries, max_repetitions,
                                   version(SNMP_EXPORTER)), out, sort_keys=False)
    return (Exporter(BLACKBOX, blackbox, directory / "blackbox.log"),
            Exporter(SNMP_EXPORTER, snmp, directory / "snmp_exporter.log"))


# --- driving a cycle ------------------------------------------------------------------------


def blackbox_up(status: int, body: str) -> tuple[bool, str]:
    if status != 200:
        return False, f"http_{status}"
    for family in text_string_to_metric_families(body):
        if family.name == "probe_success":
            return family.samples[0].value == 1, "" if family.samples[0].value == 1 else "probe_failed"
    return False, "no_probe_success"


def snmp_up(status: int, body: str) -> tuple[bool, str]:
    """Up when the answer is complete and the uplink (ifIndex 1) is operationally up, as for the agent."""
    if status != 200:
        return False, f"http_{status}"
    oper = None
    for family in text_string_to_metric_families(body):
        if family.name == "snmp_scrape_walk_duration_seconds" and family.samples and family.samples[0].value < 0:
            return False, "walk_failed"
        if family.name == "ifOperStatus":
            oper = next((s.value for s in family.samples if s.labels.get("ifIndex") == "1"), None)
    if oper is None:
        return False, "no_uplink"
    return oper == 1, "" if oper == 1 else "uplink_down"


def drive(port: int, path: str, queries: dict[str, dict[str, str]], concurrency: int, scrape_timeout: float,
          judge) -> dict[str, tuple[bool, str, float]]:
    """One request per target, ``concurrency`` at a time; per target (up, reason, seconds).

    Threads with a kept-alive http.client connection each: httpx's AsyncClient spent about 7 ms of
    CPU per request here (18 CPU-seconds for 2,620 probes), enough to starve the exporter it drives
    on two cores; this costs about 0.4 ms.
    """
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": f"{scrape_timeout:g}"}
    local = threading.local()
    connections: list[http.client.HTTPConnection] = []
    lock = threading.Lock()

    def one(item: tuple[str, dict[str, str]]) -> tuple[str, tuple[bool, str, float]]:
        target_id, query = item
        started = time.perf_counter()
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=scrape_timeout + 10)
            with lock:
                connections.append(conn)
        try:
            conn.request("GET", f"{path}?{urllib.parse.urlencode(query)}", headers=headers)
            response = conn.getresponse()
            up, reason = judge(response.status, response.read().decode("utf-8", "replace"))
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # reconnects at the next request
            up, reason = False, type(exc).__name__
        return target_id, (up, reason, time.perf_counter() - started)

    try:
        with ThreadPoolExecutor(concurrency, thread_name_prefix="scrape") as pool:
            return dict(pool.map(one, queries.items()))
    finally:
        for conn in connections:
            conn.close()
