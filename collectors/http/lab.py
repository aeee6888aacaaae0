"""Simulated portals for ``http`` targets: real HTTP and HTTPS servers on loopback.

Each target gets its own server (the standard library's threading HTTP server: a real peer, not a
mock) on the loopback address that stands for its host. HTTPS portals present a certificate from a
lab CA made with trustme; the agent trusts it through the target's ``ca_bundle``, exactly as it
would trust a province's internal CA. The page is a portal home page with a title, the sections
Decree 43/2011/NĐ-CP Art. 10 requires a government portal to publish, and every substring the
target's ``contains`` asks for, under a title holding the target's ``title``.

States (``set_state``): ``up``; ``down`` (listener closed: connection refused); ``slow`` (answers
after ``SLOW_SECONDS``, or at the next state change); ``error`` (HTTP 500); ``wrong_content`` (200
with a maintenance page); ``redirect_loop``; ``huge_body`` (streams 1 GiB from one reused chunk,
never allocated); and for HTTPS ``cert_expired``, ``cert_self_signed``, ``cert_untrusted`` (issued
by a CA the agent does not trust) and ``cert_wrong_host``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase

log = logging.getLogger(__name__)

SLOW_SECONDS = 30.0
HUGE_BODY_BYTES = 1 << 30
_CHUNK = b"<!-- " + b"x" * (64 * 1024 - 9) + b" -->\n"  # one 64 KiB chunk, written again and again
CERT_STATES = ("cert_expired", "cert_self_signed", "cert_untrusted", "cert_wrong_host")
STATES = ("up", "down", "slow", "error", "wrong_content", "redirect_loop", "huge_body", *CERT_STATES)

# Decree 43/2011/NĐ-CP, Art. 10: the information a state agency's portal must publish.
ND43_SECTIONS = (
    "Giới thiệu",
    "Tin tức, sự kiện",
    "Thông tin chỉ đạo, điều hành",
    "Thông tin tuyên truyền, phổ biến, hướng dẫn thực hiện pháp luật",
    "Chiến lược, định hướng, quy hoạch, kế hoạch phát triển",
    "Văn bản quy phạm pháp luật",
    "Dự án, hạng mục đầu tư, đấu thầu, mua sắm công",
    "Lấy ý kiến góp ý",
    "Thông tin liên hệ",
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    portal: _Portal

    def get_request(self) -> tuple[socket.socket, Any]:
        """Wrap each connection with the TLS context of the portal's state at that moment; the
        handshake runs in the request's own thread (``_Handler.setup``), never in the accept loop."""
        sock, address = self.socket.accept()
        context = self.portal.tls_context()
        if context is not None:
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("lab http %s: request from %s failed", self.portal.target_id, client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(15)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("lab http %s: " + format, self.server.portal.target_id, *args)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        portal = self.server.portal
        state = portal.state
        if state == "slow":
            portal.changed.wait(SLOW_SECONDS)
            state = portal.state if portal.state != "slow" else "up"
        if state == "huge_body":
            self._stream_huge(head)
        elif state == "redirect_loop":
            self._send(302, b"", head, [("Location", self.path)])
        elif state == "error":
            self._send(500, _page("Lỗi máy chủ", ["Đã xảy ra lỗi, vui lòng thử lại sau."]), head)
        elif state == "wrong_content":
            self._send(200, _page("Trang đang bảo trì", ["Hệ thống đang được nâng cấp."]), head)
        else:
            self._send(200, portal.page, head)

    def _send(self, status: int, body: bytes, head: bool, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _stream_huge(self, head: bool) -> None:
        """1 GiB with no Content-Length, ended by closing: the client learns the size only by reading."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if head:
            return
        portal = self.server.portal
        sent = 0
        try:
            while sent < HUGE_BODY_BYTES and portal.state == "huge_body":
                self.wfile.write(_CHUNK)
                sent += len(_CHUNK)
                portal.huge_bytes_sent += len(_CHUNK)
        except OSError:
            pass  # the client stopped reading: what a size cap should do


def _page(title: str, items: list[str] | tuple[str, ...]) -> bytes:
    entries = "\n".join(f"      <li>{html.escape(item, quote=False)}</li>" for item in items)
    return (f'<!DOCTYPE html>\n<html lang="vi">\n  <head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"</head>\n  <body>\n    <h1>{html.escape(title)}</h1>\n    <ul>\n{entries}\n    </ul>\n"
            "  </body>\n</html>\n").encode()


class _Portal:
    def __init__(self, target_id: str, hostname: str, address: str, tls: dict[str, ssl.SSLContext] | None,
                 title: str, contains: list[str]) -> None:
        self.target_id = target_id
        self.hostname = hostname
        self.address = address
        self.port = 0
        self.tls = tls  # state -> context; "up" is the valid certificate
        self.state = "up"
        self.changed = threading.Event()  # set (and replaced) at every state change, to end slow answers
        items = [*ND43_SECTIONS, *(c for c in contains if c not in ND43_SECTIONS)]
        self.page = _page(title, items)
        self.server: _Server | None = None
        self.huge_bytes_sent = 0  # body bytes written in the huge_body state, to show a client stopped early

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        return self.tls.get(self.state, self.tls["up"])

    def start(self) -> None:
        server = _Server((self.address, self.port), _Handler)
        server.portal = self
        self.port = server.server_address[1]
        self.server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"lab-http-{self.target_id}", daemon=True).start()

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def set_state(self, state: str) -> None:
        self.state = state
        changed, self.changed = self.changed, threading.Event()
        changed.set()


class HttpSimulator(SimulatorBase):
    kind = "http"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None) -> None:
        super().__init__(pool, seed, peers)
        self.portals: dict[str, _Portal] = {}
        self._dir: Path | None = None
        self._ca: trustme.CA | None = None
        self._rogue_ca: trustme.CA | None = None

    @property
    def ca_bundle(self) -> Path:
        """The lab CA's certificate, which the lab's agent configuration trusts."""
        self._ensure_ca()
        assert self._dir is not None
        return self._dir / "lab-ca.pem"

    def _ensure_ca(self) -> None:
        if self._ca is None:
            self._dir = Path(tempfile.mkdtemp(prefix="egov-lab-http-"))
            self._ca = trustme.CA(organization_name="egov-agent lab CA")
            self._ca.cert_pem.write_to_path(str(self._dir / "lab-ca.pem"))
            self._rogue_ca = trustme.CA(organization_name="Unknown CA")

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        parts = urlsplit(str(params["url"]))
        hostname = parts.hostname or target_id
        address = self.pool.take(str(params.get("address") or hostname))
        tls = self._contexts(hostname) if parts.scheme == "https" else None
        title = f"Cổng thông tin điện tử {params.get('title') or hostname}"
        portal = _Portal(target_id, hostname, address, tls, title, [str(c) for c in params.get("contains", [])])
        portal.start()
        self.portals[target_id] = portal
        new = {**params, "address": address, "port": portal.port}
        if tls is not None:
            new["ca_bundle"] = str(self.ca_bundle)
        if not up:
            await self.set_state(target_id, "down")
        return new

    def _contexts(self, hostname: str) -> dict[str, ssl.SSLContext]:
        self._ensure_ca()
        assert self._ca is not None and self._rogue_ca is not None and self._dir is not None
        now = dt.datetime.now(dt.UTC)
        leaves = {
            "up": self._ca.issue_cert(hostname),
            "cert_expired": self._ca.issue_cert(hostname, not_before=now - dt.timedelta(days=400),
                                                not_after=now - dt.timedelta(days=2)),
            "cert_untrusted": self._rogue_ca.issue_cert(hostname),
            "cert_wrong_host": self._ca.issue_cert(f"wrong-host.{hostname}"),
        }
        contexts = {}
        for state, leaf in leaves.items():
            contexts[state] = context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            leaf.configure_cert(context)
        contexts["cert_self_signed"] = _self_signed_context(hostname, self._dir)
        return contexts

    async def set_state(self, target_id: str, state: str) -> None:
        portal = self.portals[target_id]
        if state not in STATES:
            raise ValueError(f"http targets can be {', '.join(STATES)}; not {state!r}")
        if state in CERT_STATES and portal.tls is None:
            raise ValueError(f"{target_id} is served over plain HTTP: it has no certificate to break")
        if state == "down":
            portal.set_state(state)
            await asyncio.to_thread(portal.stop)
            return
        if portal.server is None:
            portal.start()
        portal.set_state(state)

    def states(self) -> dict[str, str]:
        return {target_id: portal.state for target_id, portal in self.portals.items()}

    async def close(self) -> None:
        for portal in self.portals.values():
            portal.set_state("down")  # ends slow answers and huge bodies
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in self.portals.values()))
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def _self_signed_context(hostname: str, directory: Path) -> ssl.SSLContext:
    """A certificate that is its own issuer (trustme only issues from a CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(key, hashes.SHA256()))
    path = directory / f"self-signed-{hostname}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(path))
    return context
