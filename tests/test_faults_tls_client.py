"""A portal that requires a TLS client certificate (mutual TLS), served by Python's ``ssl`` for real.

The server trusts one client CA and refuses a handshake without a certificate from it. The agent
presents the certificate configured under ``client_cert`` (and only to the configured origin); a
missing, foreign or unusable certificate is down with a reason naming which, and the key's
passphrase and contents never appear in what the probe reports. TLS 1.2 and 1.3 both: under 1.3 the
server's refusal arrives after the handshake, as a read error, and must still read as a certificate
problem, not a generic HTTP error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from pydantic import ValidationError

from collectors.http.probe import HttpCollector, HttpParams, HttpSettings
from collectors.runner import run_probe

HOST = "127.45.1.1"
PASSPHRASE = "h5-s3cret-passphrase"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        peer = self.connection.getpeercert() or {}
        subject = dict(x[0] for x in peer.get("subject", ()))
        body = f"hello {subject.get('commonName', '?')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # refused handshakes are the point of the test

    def shutdown_request(self, request: socket.socket) -> None:
        """Read what the client already sent before closing, so the close is a FIN after the TLS alert.

        Under TLS 1.3 the client sends its request before it can know the server refused its certificate;
        closing with that request unread makes the kernel reset the connection, and a reset may arrive
        before the alert (libcurl then says "broken pipe"). A server that lingers, as this one does,
        always lets the alert through.
        """
        with contextlib.suppress(OSError):
            request.settimeout(0.2)
            socket.socket.recv(request, 65536)  # the raw bytes, below the TLS layer the handshake broke
        super().shutdown_request(request)


class MutualTlsPortal:
    def __init__(self, tmp: Path, tls_version: ssl.TLSVersion) -> None:
        self.server_ca = trustme.CA()
        self.client_ca = trustme.CA()
        self.foreign_ca = trustme.CA()
        self.ca_bundle = tmp / "server-ca.pem"
        self.server_ca.cert_pem.write_to_path(str(self.ca_bundle))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = context.maximum_version = tls_version
        self.server_ca.issue_cert("portal.test").configure_cert(context)
        self.client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
        self.httpd = _Server((HOST, 0), _Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.tmp = tmp

    def client_files(self, ca: trustme.CA, name: str, passphrase: str | None = None,
                     not_after: datetime.datetime | None = None) -> tuple[Path, Path]:
        cert = ca.issue_cert(name, common_name=name, not_after=not_after,
                             not_before=not_after - datetime.timedelta(days=30) if not_after else None)
        cert_file, key_file = self.tmp / f"{name}.crt", self.tmp / f"{name}.key"
        cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        if passphrase is None:
            cert.private_key_pem.write_to_path(str(key_file))
        else:
            from cryptography.hazmat.primitives import serialization

            key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.BestAvailableEncryption(passphrase.encode())))
        key_file.chmod(0o600)
        return cert_file, key_file

    def params(self, **extra: object) -> HttpParams:
        return HttpParams.model_validate({"url": f"https://portal.test:{self.port}/", "address": HOST,
                                          "ca_bundle": str(self.ca_bundle), **extra})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def portal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MutualTlsPortal]:
    server = MutualTlsPortal(tmp_path, request.param)
    try:
        yield server
    finally:
        server.close()


def probe(params: HttpParams, timeout: float = 5.0):
    async def run():
        collector = HttpCollector(HttpSettings(threads=2))
        try:
            return await run_probe(collector, "portal", params, timeout)
        finally:
            await collector.close()

    return asyncio.run(run())


def value(result, family: str) -> float:
    (found,) = [s.value for s in result.samples if s.family == family]
    return found


def test_the_configured_client_certificate_opens_the_portal(portal: MutualTlsPortal):
    cert, key = portal.client_files(portal.client_ca, "agent.egov.test")
    result = probe(portal.params(client_cert={"cert_file": str(cert), "key_file": str(key)},
                                 contains=["hello agent.egov.test"]))
    assert (result.up, result.reason) == (True, ""), result.detail
    assert value(result, "http_status_code") == 200
    assert value(result, "http_tls_ok") == 1
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    assert value(result, "http_tls_client_cert_expiry_timestamp_seconds") == leaf.not_valid_after_utc.timestamp()


def test_an_expired_client_certificate_is_rejected_and_its_expiry_exported(portal):
    expired = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    cert, key = portal.client_files(portal.client_ca, "agent.egov.test", not_after=expired)
    result = probe(portal.params(client_cert={"cert_file": str(cert), "key_file": str(key)}))
    assert (result.up, result.reason) == (False, "tls_client_cert_rejected"), result.detail
    assert value(result, "http_tls_client_cert_expiry_timestamp_seconds") < datetime.datetime.now().timestamp()
    # The portal's own certificate is fine: never exported as invalid (under TLS 1.2 libcurl cannot tell).
    assert [s.value for s in result.samples if s.family == "http_tls_chain_valid"] in ([], [1.0])


def test_an_encrypted_key_is_opened_with_its_passphrase_secret(portal, monkeypatch):
    cert, key = portal.client_files(portal.client_ca, "agent.egov.test", passphrase=PASSPHRASE)
    monkeypatch.setenv("H5_KEY_PASSWORD", PASSPHRASE)
    good = probe(portal.params(client_cert={"cert_file": str(cert), "key_file": str(key),
                                            "key_password": "env:H5_KEY_PASSWORD"}))
    assert good.up, good.detail
    monkeypatch.setenv("H5_KEY_PASSWORD", PASSPHRASE + "-wrong")
    bad = probe(portal.params(client_cert={"cert_file": str(cert), "key_file": str(key),
                                           "key_password": "env:H5_KEY_PASSWORD"}))
    assert (bad.up, bad.reason) == (False, "tls_client_cert_error")
    assert PASSPHRASE not in bad.detail and PASSPHRASE not in repr(bad)
    assert value(bad, "http_status_code") == 0


def test_no_client_certificate_is_down_as_required_not_a_generic_error(portal):
    result = probe(portal.params())
    assert (result.up, result.reason) == (False, "tls_client_cert_required"), result.detail
    assert value(result, "http_status_code") == 0


def test_a_certificate_the_portal_does_not_trust_is_rejected(portal):
    cert, key = portal.client_files(portal.foreign_ca, "stranger.test")
    result = probe(portal.params(client_cert={"cert_file": str(cert), "key_file": str(key)}))
    assert (result.up, result.reason) == (False, "tls_client_cert_rejected"), result.detail
    assert value(result, "http_status_code") == 0


def test_a_key_that_is_not_the_certificates_is_a_local_error_that_never_shows_the_key(portal):
    cert, _ = portal.client_files(portal.client_ca, "agent.egov.test")
    _, other_key = portal.client_files(portal.client_ca, "someone.else")
    result = probe(portal.params(client_cert={"cert_file": str(cert), "key_file": str(other_key)}))
    assert (result.up, result.reason) == (False, "tls_client_cert_error"), result.detail
    key_text = other_key.read_text()
    body = key_text.split("-----")[2].strip().splitlines()[0]
    assert body not in result.detail and "PRIVATE KEY-----" not in result.detail


def test_the_certificate_goes_to_the_configured_origin_only(tmp_path):
    """A redirect to another origin must not be given the client certificate (as credentials are not)."""
    server = MutualTlsPortal(tmp_path, ssl.TLSVersion.TLSv1_3)
    try:
        cert, key = server.client_files(server.client_ca, "agent.egov.test")

        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", f"https://127.45.1.1:{server.port}/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        front = _Server(("127.45.1.2", 0), Redirect)
        threading.Thread(target=front.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            params = HttpParams.model_validate({
                "url": f"http://127.45.1.2:{front.server_address[1]}/", "ca_bundle": str(server.ca_bundle),
                "tls_verify": False, "client_cert": {"cert_file": str(cert), "key_file": str(key)}})
            result = probe(params)
        finally:
            front.shutdown()
            front.server_close()
    finally:
        server.close()
    assert (result.up, result.reason) == (False, "tls_client_cert_required"), result.detail


def test_a_missing_certificate_file_is_a_configuration_error_naming_the_field(tmp_path):
    with pytest.raises(ValidationError) as caught:
        HttpParams.model_validate({"url": "https://portal.test/",
                                   "client_cert": {"cert_file": str(tmp_path / "nope.crt")}})
    assert "client_cert.cert_file" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        HttpParams.model_validate({"url": "https://portal.test/",
                                   "client_cert": {"cert_file": __file__, "key_password": "literal-secret"}})
    (error,) = caught.value.errors()
    assert error["loc"] == ("client_cert", "key_password")
    assert "literal-secret" not in error["msg"]  # the message the configuration loader prints


def test_a_wrong_host_name_is_told_from_a_bad_chain_on_a_portal_requiring_a_certificate(tmp_path):
    """The second handshake that checks the chain alone must present the certificate too, or a TLS 1.2
    portal refuses it and the chain's validity is unknown."""
    server = MutualTlsPortal(tmp_path, ssl.TLSVersion.TLSv1_2)
    try:
        cert, key = server.client_files(server.client_ca, "agent.egov.test")
        params = HttpParams.model_validate({
            "url": f"https://other-name.test:{server.port}/", "address": HOST, "ca_bundle": str(server.ca_bundle),
            "client_cert": {"cert_file": str(cert), "key_file": str(key)}})
        result = probe(params)
    finally:
        server.close()
    assert (result.up, result.reason) == (False, "tls_hostname_mismatch"), result.detail
    assert value(result, "http_tls_hostname_valid") == 0
    assert value(result, "http_tls_chain_valid") == 1


def test_an_untrusted_portal_is_untrusted_whatever_certificate_the_agent_holds(portal, tmp_path):
    cert, key = portal.client_files(portal.client_ca, "agent.egov.test")
    other = tmp_path / "other-ca.pem"
    portal.foreign_ca.cert_pem.write_to_path(str(other))
    result = probe(portal.params(ca_bundle=str(other), client_cert={"cert_file": str(cert), "key_file": str(key)}))
    assert (result.up, result.reason) == (False, "tls_untrusted"), result.detail
    assert value(result, "http_tls_chain_valid") == 0
