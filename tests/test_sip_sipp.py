"""The SIP collector against SIPp (Debian ``sip-tester``), the reference SIP test tool, as a real peer:
it answers OPTIONS over UDP and TCP, answers late, answers with an error, or ignores OPTIONS; and
against ports where nothing answers and peers that answer garbage."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.exposition import parse_samples, sample
from support.paths import AGENT, REPO
from support.province import Province, coverage, ops_target

from collectors.runner import run_probe
from collectors.sip.probe import SipCollector, SipParams, SipSettings

HOST = "127.0.55.1"

ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer OPTIONS">
  <recv request="OPTIONS" />
  {provisional}
  {pause}
  <send>
    <![CDATA[

      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Allow: INVITE, ACK, CANCEL, BYE, OPTIONS
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""
TRYING = """<send>
    <![CDATA[

      SIP/2.0 100 Trying
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"""


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp not found: install Debian's sip-tester package (scripts/test does)")
    return path


def free_port(host: str, kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening(port: int, transport: str) -> bool:
    flag = "-Hlnu" if transport == "udp" else "-Hlnt"
    out = subprocess.run(["ss", flag, f"sport = :{port}"], capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """``sipp(transport, status=..., pause_ms=..., trying=False, builtin=None)`` starts SIPp as a UAS on
    HOST and a free port; it answers each OPTIONS with ``status`` (after ``pause_ms``, with a 100 Trying
    first if ``trying``), or runs a built-in scenario."""
    started: list[subprocess.Popen] = []

    def start(transport: str = "udp", status: str = "200 OK", pause_ms: int = 0, trying: bool = False,
              builtin: str | None = None, host: str = HOST) -> int:
        port = free_port(host, socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
        name = f"sipp-{len(started)}"
        if builtin:
            scenario = ["-sn", builtin]
        else:
            xml = tmp_path / f"{name}.xml"
            pause = f'<pause milliseconds="{pause_ms}" />' if pause_ms else ""
            xml.write_text(ANSWER.format(status=status, pause=pause, provisional=TRYING if trying else ""),
                           encoding="utf-8")
            scenario = ["-sf", str(xml)]
        log = (tmp_path / f"{name}.log").open("wb")
        proc = subprocess.Popen([sipp_binary(), *scenario, "-i", host, "-p", str(port), "-t",
                                 "u1" if transport == "udp" else "t1", "-nostdin", "-trace_err",
                                 "-error_file", str(tmp_path / f"{name}-errors.log")],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path)
        log.close()
        started.append(proc)
        deadline = time.monotonic() + 10
        while not listening(port, transport):
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "sipp did not open its port within 10 s"
            time.sleep(0.05)
        return port

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def probe(port: int, transport: str = "udp", timeout: float = 3.0, host: str = HOST, **params: object):
    async def run():
        collector = SipCollector(SipSettings())
        try:
            started = time.monotonic()
            result = await run_probe(collector, "t", SipParams(host=host, port=port, transport=transport, **params),
                                           timeout)
            return result, time.monotonic() - started
        finally:
            await collector.close()

    return asyncio.run(run())


def values(result) -> dict[str, float]:
    return {s.family: s.value for s in result.samples}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_answers_options(sipp, transport: str) -> None:
    port = sipp(transport)
    for _ in range(3):  # three transactions: each a fresh Via branch and Call-ID, each answered
        result, elapsed = probe(port, transport)
        assert result.up, result
        got = values(result)
        assert got["sip_status_code"] == 200
        assert 0 < got["sip_response_seconds"] < elapsed
        if transport == "udp":
            assert got["sip_retransmissions"] == 0
        else:
            assert "sip_retransmissions" not in got


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_an_error_response_is_a_live_stack_unless_narrowed(sipp, transport: str) -> None:
    port = sipp(transport, status="503 Service Unavailable")
    result, _ = probe(port, transport)
    assert result.up and values(result)["sip_status_code"] == 503
    narrowed, _ = probe(port, transport, ready_status=[200, "4xx"])
    assert not narrowed.up and narrowed.reason == "status_mismatch"
    assert values(narrowed)["sip_status_code"] == 503
    classes, _ = probe(port, transport, ready_status=["5xx"])
    assert classes.up


def test_a_late_answer_is_matched_after_retransmissions(sipp) -> None:
    port = sipp("udp", pause_ms=1200)  # timer E: resent at 0.5 s; SIPp answers the transaction at 1.2 s
    result, _ = probe(port, "udp", timeout=4.0)
    assert result.up, result
    got = values(result)
    assert got["sip_retransmissions"] >= 1
    assert 1.1 < got["sip_response_seconds"] < 2.0


def test_a_provisional_answer_slows_retransmissions_to_t2(sipp) -> None:
    port = sipp("udp", pause_ms=1600, trying=True)  # 100 Trying at once, 200 OK 1.6 s later
    result, _ = probe(port, "udp", timeout=4.0)
    assert result.up, result
    got = values(result)
    assert got["sip_retransmissions"] == 0  # proceeding: next resend due at T2 = 4 s, not at 0.5 and 1.5 s
    assert 1.5 < got["sip_response_seconds"] < 2.5


def test_a_sip_peer_ignoring_options_times_out_within_the_timeout(sipp) -> None:
    port = sipp("udp", builtin="uas")  # SIPp's built-in UAS waits for INVITE and drops our OPTIONS
    result, elapsed = probe(port, "udp", timeout=2.0)
    assert not result.up and result.reason == "timeout"
    assert values(result)["sip_status_code"] == 0
    assert "2 retransmissions" in result.detail  # sent at 0, 0.5 and 1.5 s (T1 = 0.5 s, doubling)
    assert 1.8 < elapsed < 2.2


def test_nothing_listening() -> None:
    udp_port = free_port(HOST, socket.SOCK_DGRAM)
    tcp_port = free_port(HOST, socket.SOCK_STREAM)
    refused_udp, elapsed = probe(udp_port, "udp")
    assert refused_udp.reason == "refused" and elapsed < 1.0  # ICMP port unreachable, no waiting for T1
    refused_tcp, _ = probe(tcp_port, "tcp")
    assert refused_tcp.reason == "refused"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind((HOST, 0))
        result, elapsed = probe(silent.getsockname()[1], "udp", timeout=1.0)
        assert result.reason == "timeout" and 0.9 < elapsed < 1.3
        assert len(_drain(silent)) == 2  # the request and one retransmission at T1


def _drain(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except BlockingIOError:
            return out


class _Replier(asyncio.DatagramProtocol):
    def __init__(self, reply: Callable[[bytes], bytes]) -> None:
        self.reply = reply

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(self.reply(data), addr)


def _header(request: bytes, name: str) -> str:
    for line in request.decode().split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line
    raise AssertionError(f"the request has no {name}")


def _sip_reply(request: bytes, call_id: str | None = None, drop: str = "") -> bytes:
    lines = ["SIP/2.0 200 OK", _header(request, "Via"), _header(request, "From"), _header(request, "To") + ";tag=x",
             f"Call-ID: {call_id}" if call_id else _header(request, "Call-ID"), _header(request, "CSeq"),
             "Content-Length: 0"]
    lines = [line for line in lines if not (drop and line.lower().startswith(drop))]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(("reply", "detail"), [
    (lambda r: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "not a SIP status line"),
    (lambda r: b"\xff\xfe\x00garbage", "not UTF-8"),
    (lambda r: _sip_reply(r, drop="cseq"), "lacks cseq"),
    (lambda r: _sip_reply(r, call_id="someone-else@10.0.0.1"), "other transactions"),
])
def test_udp_garbage_is_a_bad_response(reply, detail: str) -> None:
    async def run():
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Replier(reply), local_addr=(HOST, 0))
        collector = SipCollector(SipSettings())
        try:
            port = transport.get_extra_info("sockname")[1]
            return await run_probe(collector, "t", SipParams(host=HOST, port=port), 1.0)
        finally:
            transport.close()

    result = asyncio.run(run())
    assert not result.up and result.reason == "bad_response", result
    assert detail in result.detail


@pytest.mark.parametrize(("answer", "close"), [
    (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n", False),
    (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP", True),  # cut inside the headers
    (b"", True),  # accepts and closes
])
def test_tcp_garbage_is_a_bad_response(answer: bytes, close: bool) -> None:
    async def run():
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            if close:
                writer.close()
            else:
                await asyncio.sleep(2)

        server = await asyncio.start_server(serve, HOST, 0)
        collector = SipCollector(SipSettings())
        try:
            port = server.sockets[0].getsockname()[1]
            return await run_probe(collector, "t", SipParams(host=HOST, port=port, transport="tcp"), 1.0)
        finally:
            server.close()

    result = asyncio.run(run())
    assert not result.up and result.reason == "bad_response", result


def province(host: str, udp: int, tcp: int, closed: int) -> Province:
    """District d1: communes c1 (UDP endpoint), c2 (TCP) and c3 (a port nothing answers); their coverage."""
    p = Province(code="sip-test", levels=["province", "district", "commune"])
    p.unit("d1", "Huyện Một", level="district")
    p.unit("c1", "Xã Một", parent="d1").unit("c2", "Xã Hai", parent="d1").unit("c3", "Xã Ba", parent="d1")
    p.collector("sip", interval="30s", timeout="2s")
    p.target("c1-sip", "c1", "sip", tags=["vc_endpoint"], params={"host": host, "port": udp})
    p.target("c2-sip", "c2", "sip", tags=["vc_endpoint"], params={"host": host, "port": tcp, "transport": "tcp"})
    p.target("c3-sip", "c3", "sip", tags=["vc_endpoint"], params={"host": host, "port": closed})
    return p.kpi("vc_commune_endpoints_ready",
                 coverage(collector="sip", tags=["vc_endpoint"], level="commune", group_by="district"),
                 title_vi="Xã có điểm cầu sẵn sàng", title_en="Communes with a ready endpoint",
                 targets=[ops_target("100%", "=", phase="test")])


def test_the_agent_exports_sip_readiness_and_the_coverage_kpi(sipp, tmp_path: Path) -> None:
    udp, tcp = sipp("udp"), sipp("tcp", status="404 Not Found")
    config = province(HOST, udp, tcp, free_port(HOST, socket.SOCK_DGRAM)).write(tmp_path / "province.yml")
    once = subprocess.run([*AGENT, "once", "--config", str(config), "--format", "prometheus"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert once.returncode == 0, once.stderr
    samples = parse_samples(once.stdout)
    assert sample(samples, "egov_target_up", target="c1-sip", commune="c1", district="d1") == 1
    assert sample(samples, "egov_sip_status_code", target="c1-sip") == 200
    assert sample(samples, "egov_sip_retransmissions", target="c1-sip") == 0
    assert sample(samples, "egov_target_up", target="c2-sip") == 1  # a 404 from a live stack: ready
    assert sample(samples, "egov_sip_status_code", target="c2-sip") == 404
    assert 0 < sample(samples, "egov_sip_response_seconds", target="c2-sip") < 2
    assert sample(samples, "egov_target_up", target="c3-sip") == 0
    assert sample(samples, "egov_target_probe_failures_total", target="c3-sip", reason="refused") == 1
    assert sample(samples, "egov_kpi_numerator", kpi="vc_commune_endpoints_ready") == 2
    assert sample(samples, "egov_kpi_denominator", kpi="vc_commune_endpoints_ready") == 3
    assert sample(samples, "egov_kpi_group_value", kpi="vc_commune_endpoints_ready", group="d1") == pytest.approx(2 / 3)
