"""HTTP(S) checks for portals and e-government web systems: status, content, timing phases, TLS.

Why libcurl (pycurl): it is the one well-kept client that reports every phase of a request (DNS,
TCP connect, TLS handshake, first byte, total) from its own clock, lets the probe connect to a
configured address while keeping the URL's host name for SNI, ``Host`` and certificate checks
(``CONNECT_TO``, what split-horizon DNS and the lab need), streams the body through a callback (so
a size cap stops a 1 GB body after the cap, never buffering it), and exposes OpenSSL's verify
result and the peer's certificates even when verification fails. httpx and aiohttp trace hooks give
connect and TLS only partly and hide the verify code. libcurl's easy interface blocks, so each
probe runs on a small thread pool of the collector's own (``settings.threads``), bounded so a
province of slow portals cannot take every thread of the process; the event loop never blocks.

Redirects are followed here, not by libcurl, so every hop's address passes the same safety
allowlist as a configured target and credentials go to the configured origin only.

TLS gives three separate signals, not one: the certificate's expiry time, whether its chain is
trusted, and whether it names the host. The request itself is always made with libcurl verifying
both (unless ``tls_verify: false``), so credentials never go to an unverified peer; when the
hostname check fails first, a second handshake without the hostname check (and no request) tells
whether the chain is good; the expiry and the hostname signal (RFC 6125) come from the leaf
certificate libcurl hands over, read by ``collectors.http.certs``, whichever check failed.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import contextlib
import functools
import html
import re
import ssl
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pycurl

from agent.domain.netaddr import allowed_networks, check_allowed
from collectors.api import Collector, Family, ProbeResult, Sample
from collectors.http import certs
from collectors.http.models import BasicAuth, ClientCertificate, HttpParams, HttpSettings

PHASES = ("resolve", "connect", "tls", "processing", "transfer")

# OpenSSL X509_V_ERR_* codes as libcurl reports them (CURLINFO_SSL_VERIFYRESULT).
X509_NOT_YET_VALID, X509_EXPIRED, X509_HOSTNAME_MISMATCH = 9, 10, 62


class HttpCollector(Collector[HttpParams, HttpSettings]):
    kind = "http"
    Params = HttpParams
    Settings = HttpSettings
    families = (
        Family("http_status_code", "gauge", "HTTP status of the final response (0: none received)."),
        Family("http_phase_seconds", "gauge", "Time spent per phase of the request, summed over redirect hops.",
               ("phase",)),
        Family("http_first_byte_seconds", "gauge", "From the start of the probe to the final response's first byte."),
        Family("http_total_seconds", "gauge", "Whole request time, all redirect hops included."),
        Family("http_redirects", "gauge", "Redirects followed."),
        Family("http_body_bytes", "gauge", "Bytes of the final response body read (decoded; stops at the cap)."),
        Family("http_content_ok", "gauge", "1 if the body holds every required substring and regex match."),
        Family("http_content_checks_failed", "gauge", "Required substrings and regexes missing from the body."),
        Family("http_tls_cert_expiry_timestamp_seconds", "gauge", "When the server's certificate expires."),
        Family("http_tls_chain_valid", "gauge", "1 if the certificate chain verifies against the CA bundle."),
        Family("http_tls_hostname_valid", "gauge", "1 if the certificate names the URL's host."),
        Family("http_tls_ok", "gauge", "1 if both the chain and the host name verify."),
        Family("http_tls_client_cert_expiry_timestamp_seconds", "gauge",
               "When the client certificate the agent presents (client_cert) expires."),
    )

    def __init__(self, settings: HttpSettings) -> None:
        super().__init__(settings)
        self._pool = concurrent.futures.ThreadPoolExecutor(settings.threads, thread_name_prefix="http-probe")
        self._running: set[_Probe] = set()

    async def probe(self, target_id: str, params: HttpParams, timeout: float) -> ProbeResult:
        job = _Probe(params, self.settings, timeout)
        loop = asyncio.get_running_loop()
        self._running.add(job)
        try:
            return await loop.run_in_executor(self._pool, job.run)
        except asyncio.CancelledError:
            job.cancel.set()  # the transfer's progress callback aborts it within a second
            raise
        finally:
            self._running.discard(job)

    async def close(self) -> None:
        for job in list(self._running):
            job.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


# --- one probe, run on a pool thread ---------------------------------------------------------------


@dataclass
class _Hop:
    """What one request of the redirect chain found."""

    status: int = 0
    error: int = 0
    message: str = ""
    verify_result: int = 0
    times: dict[str, float] = field(default_factory=dict)
    first_byte: float = 0.0
    total: float = 0.0
    redirect_url: str = ""
    content_type: str = ""
    handshake_done: bool = False
    client_cert: bool = False  # the agent presented its client certificate on this hop
    leaf: certs.Leaf | None = None  # the peer's certificate, read from libcurl's certificate info


@dataclass
class _Tls:
    expiry: float | None = None
    chain_valid: bool | None = None
    hostname_valid: bool | None = None


class _Body:
    """Write callback target: keeps at most ``cap`` bytes, then makes libcurl abort the transfer."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False

    def write(self, chunk: bytes) -> int | None:
        if self.size + len(chunk) > self.cap:
            self.too_large = True
            return 0  # anything but len(chunk) aborts with CURLE_WRITE_ERROR
        self.chunks.append(chunk)
        self.size += len(chunk)
        return None

    def reset(self) -> None:
        self.chunks.clear()
        self.size = 0
        self.too_large = False


class _Probe:
    def __init__(self, params: HttpParams, settings: HttpSettings, timeout: float) -> None:
        self.params = params
        self.settings = settings
        self.timeout = timeout
        self.cancel = threading.Event()
        origin = urlsplit(params.url)
        self.origin = (origin.scheme, origin.hostname, _port_of(origin))
        ca = params.ca_bundle or settings.ca_bundle
        self.ca_bundle = str(ca) if ca else _system_ca_bundle()

    def run(self) -> ProbeResult:
        started = time.perf_counter()
        deadline = started + self.timeout - 0.05  # answer before the scheduler gives up on us
        body = _Body(self.params.max_body_bytes)
        curl = pycurl.Curl()
        try:
            return self._run(curl, body, started, deadline)
        finally:
            curl.close()

    def _run(self, curl: pycurl.Curl, body: _Body, started: float, deadline: float) -> ProbeResult:
        p = self.params
        url = p.url
        hops: list[_Hop] = []
        samples: list[Sample] = []
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return self._result(False, "timeout", hops, body, samples, started, "no time left for the next hop")
            body.reset()
            hop = self._request(curl, url, body, remaining)
            hops.append(hop)
            if hop.error or not (300 <= hop.status < 400 and hop.redirect_url and p.follow_redirects):
                break
            if len(hops) > p.max_redirects:
                return self._result(False, "too_many_redirects", hops, body, samples, started,
                                    f"more than {p.max_redirects} redirects")
            url = hop.redirect_url
            refused = self._refuse_redirect(url)
            if refused:
                return self._result(False, "redirect_not_allowed", hops, body, samples, started, refused)

        last = hops[-1]
        tls = self._tls_signals(curl, url, last, deadline)
        samples += _tls_samples(tls)
        if p.client_cert is not None:
            samples += _client_cert_expiry(p.client_cert)
        if last.error:
            reason = self._error_reason(last, body, tls)
            return self._result(False, reason, hops, body, samples, started, last.message)
        if not _status_ok(last.status, p.expect_status):
            return self._result(False, "status_mismatch", hops, body, samples, started,
                                f"status {last.status}, expected {p.expect_status}")
        if p.contains or p.regex or p.title:
            missing = _content_failures(_decode(body, last.content_type), p)
            samples.append(Sample("http_content_ok", 0.0 if missing else 1.0))
            samples.append(Sample("http_content_checks_failed", float(len(missing))))
            if missing:
                return self._result(False, "content_mismatch", hops, body, samples, started,
                                    f"{len(missing)} content check(s) failed, first: {missing[0]!r}")
        return self._result(True, "", hops, body, samples, started)

    def _request(self, curl: pycurl.Curl, url: str, body: _Body, remaining: float) -> _Hop:
        p = self.params
        parts = urlsplit(url)
        same_origin = (parts.scheme, parts.hostname, _port_of(parts)) == self.origin
        presented = False
        curl.reset()
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.PROXY, "")  # never a proxy from the environment: probe the portal itself
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(remaining * 1000)))
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(remaining * 1000)))
        curl.setopt(pycurl.USERAGENT, self.settings.user_agent)
        curl.setopt(pycurl.ACCEPT_ENCODING, "")  # whatever libcurl decodes; the cap counts decoded bytes
        curl.setopt(pycurl.WRITEFUNCTION, body.write)
        curl.setopt(pycurl.MAXFILESIZE_LARGE, p.max_body_bytes)  # refuse a too-long Content-Length at once
        curl.setopt(pycurl.NOPROGRESS, 0)
        curl.setopt(pycurl.XFERINFOFUNCTION, lambda *_: 1 if self.cancel.is_set() else 0)
        if p.method == "HEAD":
            curl.setopt(pycurl.NOBODY, 1)
        connect_to = self._connect_to(parts)
        if connect_to:
            curl.setopt(pycurl.CONNECT_TO, connect_to)
        if parts.scheme == "https":
            curl.setopt(pycurl.OPT_CERTINFO, 1)
            curl.setopt(pycurl.SSL_VERIFYPEER, 1 if p.tls_verify else 0)
            curl.setopt(pycurl.SSL_VERIFYHOST, 2 if p.tls_verify else 0)
            if self.ca_bundle:
                curl.setopt(pycurl.CAINFO, self.ca_bundle)
            if same_origin and p.client_cert is not None:  # like credentials: the configured origin only
                _present_certificate(curl, p.client_cert)
                presented = True
        if same_origin and p.auth is not None:
            if isinstance(p.auth, BasicAuth):
                curl.setopt(pycurl.HTTPAUTH, pycurl.HTTPAUTH_BASIC)
                curl.setopt(pycurl.USERNAME, p.auth.username.encode())
                curl.setopt(pycurl.PASSWORD, p.auth.password.reveal().encode())
            else:
                curl.setopt(pycurl.HTTPHEADER, [f"Authorization: Bearer {p.auth.token.reveal()}".encode()])
        hop = _Hop(client_cert=presented)
        try:
            curl.perform()
        except pycurl.error as exc:
            hop.error = int(exc.args[0])
            hop.message = _redact(str(exc.args[1]) if len(exc.args) > 1 else "", p)
        hop.status = int(curl.getinfo(pycurl.RESPONSE_CODE) or 0)
        hop.verify_result = int(curl.getinfo(pycurl.SSL_VERIFYRESULT) or 0) if parts.scheme == "https" else 0
        hop.redirect_url = curl.getinfo(pycurl.REDIRECT_URL) or ""
        hop.content_type = curl.getinfo(pycurl.CONTENT_TYPE) or ""
        hop.times, hop.first_byte, hop.total = _phases(curl, parts.scheme == "https", hop.status > 0)
        if parts.scheme == "https":
            hop.leaf = _leaf(curl)
            hop.handshake_done = float(curl.getinfo(pycurl.APPCONNECT_TIME)) > 0
        return hop

    def _connect_to(self, parts: Any) -> list[str]:
        """``CONNECT_TO`` entries sending the configured host to ``address`` (any port, or ``port``)."""
        p = self.params
        if p.address is None or parts.hostname != self.origin[1]:
            return []
        host = _bracket(parts.hostname)
        address = _bracket(str(p.address))
        if p.port is None:
            return [f"{host}::{address}:"]
        return [f"{host}:{self.origin[2]}:{address}:{p.port}", f"{host}::{address}:"]

    def _refuse_redirect(self, url: str) -> str:
        """Why a redirect target may not be contacted, or '' if it may."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"redirect to a non-HTTP URL {parts.scheme}://"
        if parts.hostname == self.origin[1] and self.params.address is not None:
            return ""  # same host: connects to the configured address, already checked
        if allowed_networks() is None:
            return ""
        try:
            check_allowed(parts.hostname)
        except ValueError as exc:
            return f"redirect to {parts.hostname}: {exc}"
        return ""

    def _tls_signals(self, curl: pycurl.Curl, url: str, hop: _Hop, deadline: float) -> _Tls:
        parts = urlsplit(url)
        tls = _Tls()
        if parts.scheme != "https" or hop.leaf is None:
            return tls
        tls.expiry = hop.leaf.not_after
        tls.hostname_valid = certs.names_host(hop.leaf, parts.hostname or "")
        verified = self.params.tls_verify
        if verified and (not hop.error or hop.handshake_done):
            tls.chain_valid = True  # libcurl verified chain and host name before sending the request
        elif verified and hop.verify_result not in (0, 1, X509_HOSTNAME_MISMATCH):
            tls.chain_valid = False  # OpenSSL stopped at the chain
        elif not verified or hop.error == pycurl.E_PEER_FAILED_VERIFICATION:
            remaining = deadline - time.perf_counter()
            if remaining > 0:  # the hostname check failed first, or nothing was verified: ask for the chain
                tls.chain_valid = self._chain_only(curl, url, remaining)
        return tls

    def _chain_only(self, curl: pycurl.Curl, url: str, remaining: float) -> bool | None:
        """A TLS handshake verifying the chain but not the host name; no request is sent."""
        parts = urlsplit(url)
        curl.reset()
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.CONNECT_ONLY, 1)
        curl.setopt(pycurl.FRESH_CONNECT, 1)
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(remaining * 1000)))
        curl.setopt(pycurl.SSL_VERIFYPEER, 1)
        curl.setopt(pycurl.SSL_VERIFYHOST, 0)
        if self.ca_bundle:
            curl.setopt(pycurl.CAINFO, self.ca_bundle)
        if self.params.client_cert is not None and (parts.scheme, parts.hostname, _port_of(parts)) == self.origin:
            _present_certificate(curl, self.params.client_cert)  # else a portal requiring one ends the handshake
        connect_to = self._connect_to(parts)
        if connect_to:
            curl.setopt(pycurl.CONNECT_TO, connect_to)
        try:
            curl.perform()
        except pycurl.error as exc:
            if exc.args[0] == pycurl.E_PEER_FAILED_VERIFICATION:
                # OpenSSL's verdict on the chain. libcurl reports a portal's alert "certificate expired" (our
                # client certificate) as a failed verification too: then the chain is good (0) or untold (1).
                verdict = int(curl.getinfo(pycurl.SSL_VERIFYRESULT) or 0)
                return True if verdict == 0 else None if verdict == 1 else False
            return None  # could not tell (timeout, reset)
        return True

    def _error_reason(self, hop: _Hop, body: _Body, tls: _Tls) -> str:
        code = hop.error
        if code == pycurl.E_FILESIZE_EXCEEDED or (code == pycurl.E_WRITE_ERROR and body.too_large):
            return "body_too_large"
        if code == pycurl.E_OPERATION_TIMEDOUT:
            return "timeout"
        if code == pycurl.E_COULDNT_RESOLVE_HOST:
            return "dns_error"
        if code == pycurl.E_COULDNT_CONNECT:
            return "connect_error"
        if code == pycurl.E_PEER_FAILED_VERIFICATION:
            if hop.verify_result == X509_EXPIRED:
                return "tls_expired"
            if hop.verify_result == X509_NOT_YET_VALID:
                return "tls_not_yet_valid"
            if hop.verify_result == X509_HOSTNAME_MISMATCH or tls.hostname_valid is False:
                return "tls_hostname_mismatch"
            if hop.client_cert and hop.verify_result in (0, 1):  # OpenSSL found no fault in the portal's chain:
                return "tls_client_cert_rejected"  # the portal's alert "certificate expired", as libcurl words it
            return "tls_untrusted"
        if code == pycurl.E_SSL_CERTPROBLEM or (hop.client_cert and code == pycurl.E_BAD_FUNCTION_ARGUMENT):
            return "tls_client_cert_error"  # our own certificate or key could not be used (a key not the cert's: 43)
        if code in (pycurl.E_SSL_CONNECT_ERROR, pycurl.E_RECV_ERROR, pycurl.E_SEND_ERROR) and \
                _CLIENT_CERT_ALERT.search(hop.message):
            return "tls_client_cert_rejected" if hop.client_cert else "tls_client_cert_required"
        if code == pycurl.E_SSL_CONNECT_ERROR:
            return "tls_error"
        if code == pycurl.E_SSL_CACERT_BADFILE:
            return "ca_bundle_error"
        if code == pycurl.E_ABORTED_BY_CALLBACK:
            return "cancelled"
        if code == pycurl.E_GOT_NOTHING:
            return "empty_reply"
        if code == pycurl.E_BAD_CONTENT_ENCODING:
            return "bad_encoding"
        return "http_error"

    def _result(self, up: bool, reason: str, hops: list[_Hop], body: _Body, samples: list[Sample],
                started: float, detail: str = "") -> ProbeResult:
        last = hops[-1] if hops else _Hop()
        phases = dict.fromkeys(PHASES, 0.0)
        for hop in hops:
            for name, value in hop.times.items():
                phases[name] += value
        out = [Sample("http_status_code", float(last.status))]
        out += [Sample("http_phase_seconds", value, (name,)) for name, value in phases.items()]
        if last.first_byte > 0:
            before = sum(h.total for h in hops[:-1])
            out.append(Sample("http_first_byte_seconds", before + last.first_byte))
        out.append(Sample("http_total_seconds", sum(h.total for h in hops) or time.perf_counter() - started))
        out.append(Sample("http_redirects", float(max(0, len(hops) - 1))))
        out.append(Sample("http_body_bytes", float(body.size)))
        return ProbeResult(up, reason, out + samples, detail)


# --- helpers -------------------------------------------------------------------------------------


# The TLS alerts a server sends when it wants a client certificate and got none it accepts; under TLS 1.3
# they arrive after the handshake, so libcurl reports them as a receive error, not a connect error.
_CLIENT_CERT_ALERT = re.compile(r"alert (certificate \w+|bad certificate|unsupported certificate|unknown ca|"
                                r"handshake failure|access denied)", re.IGNORECASE)


def _present_certificate(curl: pycurl.Curl, client: ClientCertificate) -> None:
    curl.setopt(pycurl.SSLCERT, str(client.cert_file))
    curl.setopt(pycurl.SSLCERTTYPE, "PEM")
    curl.setopt(pycurl.SSLKEY, str(client.key_file or client.cert_file))
    curl.setopt(pycurl.SSLKEYTYPE, "PEM")
    if client.key_password is not None:
        curl.setopt(pycurl.KEYPASSWD, client.key_password.reveal())


def _client_cert_expiry(client: ClientCertificate) -> list[Sample]:
    """The agent's own certificate's end of validity, so it can be renewed before every portal refuses it."""
    try:
        leaf = certs.read_pem(client.cert_file.read_bytes())
    except OSError:
        leaf = None
    if leaf is None:
        return []  # the probe itself says tls_client_cert_error
    return [Sample("http_tls_client_cert_expiry_timestamp_seconds", leaf.not_after)]


def _port_of(parts: Any) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@functools.cache
def _system_ca_bundle() -> str:
    """The platform's CA file (libcurl's built-in path may not exist on this distribution)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return ""


def _redact(message: str, params: HttpParams) -> str:
    """libcurl messages never carry credentials, but make sure of it before they reach a log."""
    auth = params.auth
    secrets = [auth.password.reveal()] if isinstance(auth, BasicAuth) else [auth.token.reveal()] if auth else []
    if params.client_cert is not None and params.client_cert.key_password is not None:
        secrets.append(params.client_cert.key_password.reveal())
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def _phases(curl: pycurl.Curl, tls: bool, answered: bool) -> tuple[dict[str, float], float, float]:
    """Split libcurl's cumulative marks into consecutive phases (resolve, connect, tls, processing, transfer).

    A mark of 0 means "not reached" unless a later mark was reached (a reused connection has no
    DNS or connect time). The time after the last mark reached goes to the phase that was running
    when the request ended, so a timeout or a failed handshake shows where it happened. libcurl
    fills the first-byte mark even when no response came, so it counts only if one did.
    """
    total = float(curl.getinfo(pycurl.TOTAL_TIME))
    first_byte = float(curl.getinfo(pycurl.STARTTRANSFER_TIME)) if answered else 0.0
    marks = [("resolve", float(curl.getinfo(pycurl.NAMELOOKUP_TIME))),
             ("connect", float(curl.getinfo(pycurl.CONNECT_TIME)))]
    if tls:
        marks.append(("tls", float(curl.getinfo(pycurl.APPCONNECT_TIME))))
    marks.append(("processing", first_byte))
    out = dict.fromkeys(PHASES, 0.0)
    last = 0.0
    for i, (name, mark) in enumerate(marks):
        if mark > 0 or any(m > 0 for _, m in marks[i + 1:]):
            out[name] = max(0.0, mark - last)
            last = max(last, mark)
        else:
            out[name] = max(0.0, total - last)
            last = total
            break
    out["transfer"] = max(0.0, total - last)
    return out, first_byte, total


def _leaf(curl: pycurl.Curl) -> certs.Leaf | None:
    """The peer's certificate: the first of libcurl's chain (PEM under the key ``Cert``) that decodes."""
    try:
        chain = curl.getinfo(pycurl.INFO_CERTINFO) or []
    except pycurl.error:
        return None
    for fields in chain:
        pem = dict(fields).get("Cert")
        leaf = certs.read_pem(pem) if pem else None
        if leaf is not None:
            return leaf
    return None


def _tls_samples(tls: _Tls) -> list[Sample]:
    out = []
    if tls.expiry is not None:
        out.append(Sample("http_tls_cert_expiry_timestamp_seconds", tls.expiry))
    if tls.chain_valid is not None:
        out.append(Sample("http_tls_chain_valid", 1.0 if tls.chain_valid else 0.0))
    if tls.hostname_valid is not None:
        out.append(Sample("http_tls_hostname_valid", 1.0 if tls.hostname_valid else 0.0))
    if tls.chain_valid is not None and tls.hostname_valid is not None:
        out.append(Sample("http_tls_ok", 1.0 if tls.chain_valid and tls.hostname_valid else 0.0))
    return out


def _status_ok(status: int, expected: list[int | str]) -> bool:
    return any(status == e if isinstance(e, int) else str(status)[0] == e[0] for e in expected)


def _decode(body: _Body, content_type: str) -> str:
    charset = "utf-8"
    match = re.search(r"charset=([\w.:-]+)", content_type, re.IGNORECASE)
    if match:
        with contextlib.suppress(LookupError):
            charset = codecs.lookup(match.group(1)).name
    return b"".join(body.chunks).decode(charset, errors="replace")


def _normal(text: str, fold: bool) -> str:
    """HTML entities unescaped and Unicode in NFC, so «Tin tức» matches ``Tin t&#7913;c`` or decomposed marks."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    return text.casefold() if fold else text


_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


def _content_failures(text: str, p: HttpParams) -> list[str]:
    """The checks that failed, by their configured text (never the page's own text)."""
    fold = p.ignore_case
    missing = []
    if p.title is not None:
        found = _TITLE.search(text)
        if found is None or _normal(p.title, fold) not in _normal(" ".join(found.group(1).split()), fold):
            missing.append(f"title: {p.title}")
    page = _normal(text, fold)
    missing += [needle for needle in p.contains if _normal(needle, fold) not in page]
    flags = re.IGNORECASE if fold else 0
    missing += [pattern for pattern in p.regex if not re.search(pattern, _normal(text, False), flags)]
    return missing


__all__ = ["HttpCollector", "HttpParams", "HttpSettings"]
