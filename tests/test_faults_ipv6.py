"""Every kind of target on IPv6 (::1), through the real agent: its configuration, scheduler, collectors
and exposition, against real peers listening on ::1 only: the kernel's ICMPv6 echo, a TCP listener,
SIPp over UDP and TCP, an HTTP and an HTTPS server (the certificate names the portal, the agent
connects to ::1), an MCU's JSON API, and snmpsim answering SNMP over UDP/IPv6.

IPv6 is where hand-written address code breaks: brackets in URLs, Via headers and SNMP transports,
a long-form address (0:0:0:0:0:0:0:1) whose replies come back from ``::1``, the allowlist.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from support.exposition import sample
from support.faults import InProcessAgent, ScriptedHttp, province
from support.province import Province
from support.snmp_peers import snmpsim_recordings, stop, wait_answering

from agent.app.runtime import Agent, ProbeNotAllowed
from agent.config.loading import load_config

os.environ["EGOV_TEST_H5_COMMUNITY"] = "linux"
SIPP_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer OPTIONS">
  <recv request="OPTIONS" />
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]h5[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def free_port6(kind: int) -> int:
    with socket.socket(socket.AF_INET6, kind) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def listening(port: int, flag: str) -> bool:
    out = subprocess.run(["ss", flag, f"sport = :{port}"], capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


class Peers:
    """Every peer on ::1, started once for the module and stopped, each by its own handle, at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.closers: list = []

    def tcp(self) -> int:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.listen(16)
        self.closers.append(s.close)
        return s.getsockname()[1]

    def sipp(self, transport: str) -> int:
        if shutil.which("sipp") is None:
            pytest.fail("sipp not found: install Debian's sip-tester package (scripts/test does)")
        port = free_port6(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
        xml = self.tmp / "answer.xml"
        xml.write_text(SIPP_SCENARIO, encoding="utf-8")
        log = (self.tmp / f"sipp-{transport}.log").open("wb")
        self.procs.append(subprocess.Popen(
            ["sipp", "-sf", str(xml), "-i", "::1", "-p", str(port), "-t", "u1" if transport == "udp" else "t1",
             "-nostdin"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp))
        log.close()
        deadline = time.monotonic() + 10
        while not listening(port, "-Hlnu" if transport == "udp" else "-Hlnt"):
            assert self.procs[-1].poll() is None, (self.tmp / f"sipp-{transport}.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "sipp did not open its port on ::1 within 10 s"
            time.sleep(0.05)
        return port

    def http(self, body: bytes) -> int:
        server = ScriptedHttp("::1")
        server.serve(body)
        self.closers.append(server.close)
        return server.port

    def https(self) -> tuple[int, Path]:
        ca = trustme.CA()
        bundle = self.tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("portal6.test").configure_cert(context)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"host {self.headers.get('Host')}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server_class = type("Server6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6,
                                                                "daemon_threads": True})
        httpd = server_class(("::1", 0), Handler)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.closers += [httpd.server_close, httpd.shutdown]
        return httpd.server_address[1], bundle

    def snmpsim(self) -> int:
        data = self.tmp / "snmp"
        data.mkdir()
        shutil.copy(snmpsim_recordings() / "linux-full-walk.snmprec", data / "linux.snmprec")
        port = free_port6(socket.SOCK_DGRAM)
        exe = Path(sys.executable).parent / "snmpsim-command-responder"
        log = self.tmp / "snmpsim.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(exe), f"--data-dir={data}", f"--agent-udpv6-endpoint=[::1]:{port}",
                                     f"--cache-dir={self.tmp / 'snmpsim-cache'}", "--log-level=error"],
                                    stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"})
        self.procs.append(proc)
        wait_answering(["-v2c", "-c", "linux"], f"udp6:[::1]:{port}", proc, log)
        return port

    def close(self) -> None:
        for proc in self.procs:
            stop(proc)
        for close in reversed(self.closers):
            close()


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("ipv6")
    made = Peers(tmp)
    try:
        https_port, bundle = made.https()
        yield {"tmp": tmp, "tcp": made.tcp(), "sip_udp": made.sipp("udp"), "sip_tcp": made.sipp("tcp"),
               "http": made.http(b"<title>Cong thong tin</title>"), "https": https_port, "ca": bundle,
               "mcu": made.http(json.dumps({"conferences": 2, "participants": 9, "largest_conference": 6,
                                            "total_conferences_created": 77}).encode()),
               "snmp": made.snmpsim()}
    finally:
        made.close()


def ipv6_province(p: dict) -> Province:
    """One target of every kind at ::1 (ping also in its long form), against the module's peers."""
    province_ = province()
    province_.collector("icmp", interval="30s", timeout="2s",
                        settings={"privileged": True, "up_rule": {"max_loss": 0.5, "over_probes": 1}})
    for kind, timeout in (("tcp", "2s"), ("sip", "2s"), ("http", "3s"), ("mcu", "2s"), ("snmp", "4s")):
        province_.collector(kind, interval="30s", timeout=timeout)
    ping = {"count": 3, "interval": 0.01}
    province_.target("ping6", "c1", "icmp", params={"host": "::1", **ping})
    province_.target("ping6-long", "c1", "icmp", params={"host": "0:0:0:0:0:0:0:1", **ping})
    province_.target("tcp6", "c1", "tcp", params={"host": "::1", "port": p["tcp"]})
    province_.target("sip6-udp", "c1", "sip", params={"host": "::1", "port": p["sip_udp"]})
    province_.target("sip6-tcp", "c1", "sip", params={"host": "::1", "port": p["sip_tcp"], "transport": "tcp"})
    province_.target("http6", "c2", "http", params={"url": f"http://[::1]:{p['http']}/", "title": "Cong thong tin"})
    province_.target("https6", "c2", "http", params={
        "url": f"https://portal6.test:{p['https']}/", "address": "::1", "ca_bundle": str(p["ca"]),
        "contains": [f"host portal6.test:{p['https']}"]})
    province_.target("mcu6", "c2", "mcu", params={
        "adapter": "http", "url": f"http://[::1]:{p['mcu']}/colibri/stats", "profile": "jitsi_videobridge"})
    return province_.target("snmp6", "c2", "snmp", params={
        "host": "::1", "port": p["snmp"], "community": "env:EGOV_TEST_H5_COMMUNITY", "interface": {"name": "eth0"}})


def test_every_collector_reaches_an_ipv6_target(tmp_path: Path, peers: dict):
    agent = InProcessAgent(ipv6_province(peers).write(tmp_path / "faults.yml"))
    try:
        s = agent.probe()
    finally:
        agent.close()
    down = {t: sample(s, "egov_target_up", target=t) for t in
            ("ping6", "ping6-long", "tcp6", "sip6-udp", "sip6-tcp", "http6", "https6", "mcu6", "snmp6")}
    assert all(v == 1 for v in down.values()), down
    for target in ("ping6", "ping6-long"):  # the long form's replies come from "::1": matched all the same
        assert sample(s, "egov_icmp_echo_replies_total", target=target) == 3
    assert sample(s, "egov_sip_status_code", target="sip6-udp") == 200
    assert sample(s, "egov_sip_status_code", target="sip6-tcp") == 200
    assert sample(s, "egov_http_status_code", target="http6") == 200
    assert sample(s, "egov_http_tls_ok", target="https6") == 1
    assert sample(s, "egov_mcu_meetings_held_total", target="mcu6") == 77
    assert sample(s, "egov_mcu_ports_in_use", target="mcu6") == 9
    assert sample(s, "egov_snmp_if_oper_status", target="snmp6", role="uplink") == 1  # eth0 up in the recording
    assert sample(s, "egov_snmp_uptime_seconds", target="snmp6") > 0


@pytest.mark.parametrize("host", ["::2", "fe80::1", "::ffff:127.0.0.1", "2001:db8::1"])
def test_an_ipv6_address_outside_the_allowlist_is_refused_naming_it(tmp_path: Path, host: str):
    """::1/128 allows ::1 only: not its neighbour, not a link-local router, not IPv4 loopback written as IPv6."""
    p = province().collector("tcp", interval="30s", timeout="2s")
    path = p.target("t6", "c1", "tcp", params={"host": host, "port": 80}).write(tmp_path / "faults.yml")
    with pytest.raises(ProbeNotAllowed) as caught:
        Agent(load_config(path))
    assert f"target t6: address {host} is outside EGOV_AGENT_PROBE_ALLOW" in str(caught.value)
