"""TLS, basic authentication and response headers for the agent's HTTP endpoint.

The file format is the Prometheus exporter-toolkit's ``--web.config.file`` (``tls_server_config``,
``http_server_config``, ``rate_limit``, ``basic_auth_users`` with bcrypt hashes), so one file serves
node_exporter and egov-agent alike. It is validated like the agent's own configuration: every
problem at once, each with file, line and key, and never a secret's value in a message.

Differences from exporter-toolkit, each refused with a located error rather than silently weakened:
``RequireAnyClientCert`` (a certificate nobody verified proves nothing; use
``RequireAndVerifyClientCert``), ``cipher_suites`` and ``curve_preferences`` (Go names with no
OpenSSL equivalent here; OpenSSL's defaults are used and ``min_version: TLS13`` restricts further).
``RequestClientCert`` is accepted and asks for no certificate, since the agent would not use an
unverified one. Like exporter-toolkit, the file and the certificates it names are re-read when they
change, so a renewed certificate is picked up without a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import ssl
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any, Literal

import bcrypt
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator

from agent.config.errors import problems_from
from agent.config.yamlsource import ConfigError, Document, Path_, Problem, format_path, load_document
from agent.domain.models import Duration, StrictModel
from agent.domain.secrets import SecretValue

log = logging.getLogger(__name__)

TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# exporter-toolkit's allowed response headers, with their allowed values where it fixes them.
EXTRA_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (), "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": (), "Content-Security-Policy": (),
}
_BCRYPT = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
# A bcrypt hash of a random string, compared against when the user is unknown, so that an unknown
# user costs the same time as a wrong password (no user enumeration by timing).
_DECOY_HASH = bcrypt.hashpw(secrets.token_bytes(16).hex().encode(), bcrypt.gensalt(rounds=10))
AUTH_CACHE_SIZE = 256


def _bcrypt_hash(value: Any) -> SecretValue:
    # Never echo the value: it may be a password written in the clear.
    if not isinstance(value, str) or not _BCRYPT.match(value):
        raise ValueError("expected a bcrypt hash ($2y$10$…), e.g. from `egov-agent hash-password`")
    return SecretValue(value, "bcrypt hash")


def _inline_key(value: Any) -> SecretValue:
    if not isinstance(value, str):
        raise ValueError("expected a PEM private key as text")
    return SecretValue(value, "inline key")


BcryptHash = Annotated[SecretValue, BeforeValidator(_bcrypt_hash)]
InlineKey = Annotated[SecretValue, BeforeValidator(_inline_key)]
ClientAuth = Literal["", "NoClientCert", "RequestClientCert", "RequireAnyClientCert", "RequireClientCert",
                     "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]


class TlsServerConfig(StrictModel):
    cert_file: str = ""
    key_file: str = ""
    cert: str = Field("", description="The certificate as PEM text, instead of cert_file")
    key: InlineKey | None = Field(None, description="The private key as PEM text, instead of key_file")
    client_auth_type: ClientAuth = ""
    client_ca_file: str = ""
    client_ca: str = Field("", description="Client CA certificates as PEM text, instead of client_ca_file")
    client_allowed_sans: list[str] | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS13"
    prefer_server_cipher_suites: bool = True
    cipher_suites: list[str] = Field(default_factory=list)
    curve_preferences: list[str] = Field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file or self.cert or self.key_file or self.key or self.client_ca_file
                    or self.client_ca or self.client_auth_type)

    @model_validator(mode="after")
    def _consistent(self) -> TlsServerConfig:
        if not self.enabled:
            return self
        if not (self.cert_file or self.cert):
            raise ValueError("missing one of cert or cert_file")
        if not (self.key_file or self.key):
            raise ValueError("missing one of key or key_file")
        if self.client_auth_type in ("RequireAnyClientCert", "RequireClientCert"):
            raise ValueError(f"client_auth_type {self.client_auth_type} accepts certificates nobody verified and is "
                             "not supported; use RequireAndVerifyClientCert with client_ca_file")
        verifies = self.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
        has_ca = bool(self.client_ca_file or self.client_ca)
        if has_ca and not verifies:
            raise ValueError("client CAs are configured without a client_auth_type that verifies client certificates")
        if verifies and not has_ca:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file (or client_ca)")
        if self.client_allowed_sans is not None and self.client_auth_type != "RequireAndVerifyClientCert":
            raise ValueError("client_allowed_sans requires client_auth_type RequireAndVerifyClientCert")
        if self.cipher_suites:
            raise ValueError("cipher_suites is not supported (Go cipher names); OpenSSL's defaults are used, "
                             "set min_version: TLS13 to restrict them")
        if self.curve_preferences:
            raise ValueError("curve_preferences is not supported; OpenSSL's default groups are used")
        if TLS_VERSIONS[self.min_version] > TLS_VERSIONS[self.max_version]:
            raise ValueError("min_version is above max_version")
        return self


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if name not in EXTRA_HEADERS:
            raise ValueError(f"HTTP header {name!r} can not be configured; allowed: {sorted(EXTRA_HEADERS)}")
        allowed = EXTRA_HEADERS[name]
        if allowed and value not in allowed:
            raise ValueError(f"invalid value for {name}: expected one of {list(allowed)}, got {value!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"invalid value for {name}: line breaks are not allowed")
    return headers


class HttpServerConfig(StrictModel):
    http2: bool = Field(True, description="Accepted for compatibility; the agent serves HTTP/1.1")
    headers: Annotated[dict[str, str], AfterValidator(_check_headers)] = Field(default_factory=dict)


class RateLimitConfig(StrictModel):
    burst: int = Field(0, ge=0)
    interval: Duration | None = None


class WebConfig(StrictModel):
    tls_server_config: TlsServerConfig = Field(default_factory=TlsServerConfig)
    http_server_config: HttpServerConfig = Field(default_factory=HttpServerConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    basic_auth_users: dict[str, BcryptHash] = Field(default_factory=dict)


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, caching verdicts (bcrypt is slow on purpose).

    The cache key is an HMAC under a per-process random key, so the cache never holds a password.
    Like exporter-toolkit, one bcrypt comparison runs at a time, so a flood of guesses costs one core.
    """

    def __init__(self, users: dict[str, SecretValue]) -> None:
        self.users = users
        self._mac_key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()

    def check(self, header: str | None) -> tuple[bool, str]:
        """(allowed, user name or "") for an Authorization header."""
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return False, ""
        try:
            raw_user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except binascii.Error:
            return False, ""
        if not sep:
            return False, ""
        # Bytes as the client sent them, like Go's r.BasicAuth(): a UTF-8 password matches a hash of its UTF-8.
        user = raw_user.decode("utf-8", "replace")
        stored = self.users.get(user)
        hashed = (stored.reveal().encode() if stored is not None else _DECOY_HASH)
        key = hmac.new(self._mac_key, b"\0".join((raw_user, hashed, password)), hashlib.sha256).digest()
        with self._lock:
            verdict = self._cache.get(key)
            if verdict is not None:
                self._cache.move_to_end(key)
        if verdict is None:
            with self._bcrypt_lock:
                verdict = bcrypt.checkpw(password, hashed) and stored is not None
            with self._lock:
                self._cache[key] = verdict
                while len(self._cache) > AUTH_CACHE_SIZE:
                    self._cache.popitem(last=False)
        return verdict, user


class TokenBucket:
    """exporter-toolkit's ``rate_limit``: ``burst`` requests at once, then one per ``interval``."""

    def __init__(self, burst: int, interval: float) -> None:
        self.capacity = max(burst, 1)
        self.rate = 1.0 / interval
        self.tokens = float(self.capacity)
        self.last = time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class WebSettings:
    """What the HTTP server applies to each connection and request."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, auth: BasicAuth | None = None,
                 headers: dict[str, str] | None = None, limiter: TokenBucket | None = None,
                 allowed_sans: list[str] | None = None, files: tuple[Path, ...] = ()) -> None:
        self.ssl_context = ssl_context
        self.auth = auth
        self.headers = headers or {}
        self.limiter = limiter
        self.allowed_sans = allowed_sans
        self.files = files  # the web config and every file it names, watched for changes

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context else "http"


def _no_password() -> str:
    raise ValueError("the private key is encrypted; give an unencrypted key (readable by the agent only)")


class _Located:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def bad(self, path: Path_, message: str) -> None:
        file, line = self.doc.locate(path)
        self.problems.append(Problem(file, line, format_path(path), message))


def _pem_path(text: str) -> str:
    """A PEM text as a file name OpenSSL can open, without writing it to disk (an anonymous memfd)."""
    fd = os.memfd_create("egov-pem", os.MFD_CLOEXEC)
    os.write(fd, text.encode())
    return f"/proc/self/fd/{fd}"


def _close_memfd(path: str) -> None:
    if path.startswith("/proc/self/fd/"):
        os.close(int(path.rsplit("/", 1)[1]))


def _readable(where: _Located, path: Path_, file: Path) -> bool:
    try:
        with file.open("rb"):
            return True
    except OSError as exc:
        where.bad(path, f"cannot read {file}: {exc.strerror or exc}")
        return False


def _ssl_context(tls: TlsServerConfig, base: Path, where: _Located) -> tuple[ssl.SSLContext | None, list[Path]]:
    prefix: Path_ = ("tls_server_config",)
    files: list[Path] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_VERSIONS[tls.min_version]
    ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    ok = True
    cert = base / tls.cert_file if tls.cert_file else None
    key = base / tls.key_file if tls.key_file else None
    for name, file in (("cert_file", cert), ("key_file", key)):
        if file is not None:
            files.append(file)
            ok &= _readable(where, (*prefix, name), file)
    if ok:
        cert_path = str(cert) if cert else _pem_path(tls.cert)
        key_path = str(key) if key else _pem_path(tls.key.reveal() if tls.key else "")
        try:
            ctx.load_cert_chain(cert_path, key_path, password=_no_password)
        except (ssl.SSLError, ValueError) as exc:
            what = "cert_file" if tls.cert_file else "cert"
            # OpenSSL's reason (e.g. KEY_VALUES_MISMATCH) names no key material.
            reason = getattr(exc, "reason", None) or str(exc)
            where.bad((*prefix, what), f"cannot load the certificate and its key: {reason}")
            ok = False
        finally:
            _close_memfd(cert_path)
            _close_memfd(key_path)
    mode = tls.client_auth_type
    if mode in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        ctx.verify_mode = ssl.CERT_OPTIONAL if mode == "VerifyClientCertIfGiven" else ssl.CERT_REQUIRED
        try:
            if tls.client_ca_file:
                ca = base / tls.client_ca_file
                files.append(ca)
                if not _readable(where, (*prefix, "client_ca_file"), ca):
                    return None, files
                ctx.load_verify_locations(cafile=str(ca))
            else:
                ctx.load_verify_locations(cadata=tls.client_ca)
        except (ssl.SSLError, ValueError) as exc:
            what = "client_ca_file" if tls.client_ca_file else "client_ca"
            where.bad((*prefix, what), f"no CA certificate could be loaded: {getattr(exc, 'reason', None) or exc}")
            ok = False
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return (ctx if ok else None), files


def load_web_config(path: str | Path) -> WebSettings:
    """Validate the file and build what it asks for; raise ConfigError listing every problem."""
    doc = load_document(path)
    try:
        config = WebConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, doc)) from None
    where = _Located(doc)
    base = Path(path).resolve().parent
    files: list[Path] = [Path(path).resolve()]
    context = None
    if config.tls_server_config.enabled:
        context, more = _ssl_context(config.tls_server_config, base, where)
        files += more
    if where.problems:
        raise ConfigError(where.problems)
    limit = config.rate_limit
    return WebSettings(
        ssl_context=context,
        auth=BasicAuth(dict(config.basic_auth_users)) if config.basic_auth_users else None,
        headers=dict(config.http_server_config.headers),
        limiter=TokenBucket(limit.burst, limit.interval) if limit.interval else None,
        allowed_sans=config.tls_server_config.client_allowed_sans,
        files=tuple(files),
    )


def _stamp(files: tuple[Path, ...]) -> tuple[tuple[int, int, int] | None, ...]:
    out: list[tuple[int, int, int] | None] = []
    for file in files:
        try:
            st = file.stat()
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


class WebConfigSource:
    """The current web settings, re-read when the file or a certificate it names changes.

    Checked at most once a second, from the connection threads. A change that does not validate is
    logged and the settings in force stay: the endpoint never falls open because of a bad edit.
    """

    CHECK_EVERY = 1.0

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.settings = load_web_config(self.path) if self.path else WebSettings()
        self._stamp = _stamp(self.settings.files)
        self._next_check = time.monotonic() + self.CHECK_EVERY
        self._lock = threading.Lock()

    def current(self) -> WebSettings:
        if self.path is not None and time.monotonic() >= self._next_check:
            with self._lock:
                if time.monotonic() >= self._next_check:
                    self._next_check = time.monotonic() + self.CHECK_EVERY
                    if _stamp(self.settings.files) != self._stamp:
                        self.reload()
        return self.settings

    def reload(self) -> list[Problem]:
        """Re-read now (SIGHUP); the problems if the new file is refused."""
        if self.path is None:
            return []
        stamp = _stamp(self.settings.files)
        try:
            settings = load_web_config(self.path)
        except ConfigError as exc:
            self._stamp = stamp  # report a bad edit once, not at every connection
            for problem in exc.problems:
                log.error("web config refused, the previous one stays in force: %s", problem)
            return exc.problems
        self.settings = settings
        self._stamp = _stamp(settings.files)
        log.info("web config loaded from %s: %s, basic auth %s", self.path, settings.scheme.upper(),
                 "on" if settings.auth else "off")
        return []


def hash_password(password: str, rounds: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
