"""The http collector's configuration models, apart from pycurl and the certificate reader.

``check-config`` validates a portal's params with these without loading libcurl or OpenSSL
bindings; the collector (collectors/http.py) loads them only when an agent probes.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, Field, FilePath, model_validator

from agent.domain.models import Regex, StrictModel
from agent.domain.netaddr import Probed, ProbeHost
from agent.domain.secrets import Secret
from agent.domain.version import __version__

MiB = 1024 * 1024


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    if not parts.hostname:
        raise ValueError(f"the URL has no host: {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("put credentials under auth: (as secret references), not in the URL")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"the URL has an invalid port: {value!r}") from None
    if any(ch.isspace() for ch in value):
        raise ValueError(f"the URL contains white space: {value!r}")
    return _ascii_url(value)


def _ascii_url(value: str) -> str:
    """An international host name in IDNA form, other non-ASCII characters percent-encoded (as browsers send them)."""
    if value.isascii():
        return value
    parts = urlsplit(value)
    host = parts.hostname or ""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"invalid international host name {host!r}") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if parts.port:
        netloc += f":{parts.port}"
    safe = "/%:@!$&'()*+,;=?~-._"
    return parts._replace(netloc=netloc, path=quote(parts.path, safe=safe), query=quote(parts.query, safe=safe),
                          fragment="").geturl()


def _check_status(value: int | str) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"expected a status code (200) or class ('2xx'), got {value!r}")
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    if isinstance(value, str) and re.fullmatch(r"[1-5]xx", value):
        return value
    raise ValueError(f"expected a status code 100-599 or a class such as '2xx', got {value!r}")


Url = Annotated[str, AfterValidator(_check_url)]
StatusSpec = Annotated[int | str, AfterValidator(_check_status)]


class BasicAuth(StrictModel):
    kind: Literal["basic"]
    username: str
    password: Secret


class BearerAuth(StrictModel):
    kind: Literal["bearer"]
    token: Secret


class ClientCertificate(StrictModel):
    """The certificate the agent presents to a portal that requires one (mutual TLS).

    Only the file paths are configuration: the key stays in its file (readable by the agent's user
    only) and its passphrase, if any, is a secret reference, so neither reaches a log or a label.
    """

    cert_file: FilePath = Field(description="PEM client certificate (and its chain)")
    key_file: FilePath | None = Field(None, description="PEM private key (default: in cert_file)")
    key_password: Secret | None = Field(None, description="Passphrase of an encrypted key, as env:NAME or file:/path")


class HttpParams(StrictModel):
    url: Annotated[Url, Probed(url=True, unless="address")]  # its host is probed unless address says where
    address: ProbeHost | None = Field(None, description="Connect here instead of resolving the URL's host (the URL's "
                                                   "host name is still sent and verified), like curl --connect-to")
    port: int | None = Field(None, ge=1, le=65535, description="Port to connect to at address (default: the URL's)")
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: list[StatusSpec] = Field(default_factory=lambda: list[StatusSpec](["2xx"]), min_length=1)
    contains: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Substrings the body must all contain (e.g. the Decree 43/2011 sections)")
    regex: list[Regex] = Field(default_factory=list, description="Regular expressions the body must all match")
    title: str | None = Field(None, min_length=1, description="Text the page's <title> must contain")
    ignore_case: bool = Field(False, description="Case-insensitive title, contains and regex checks")
    follow_redirects: bool = True
    max_redirects: int = Field(5, ge=0, le=30)
    max_body_bytes: int = Field(4 * MiB, ge=1024, le=256 * MiB)
    tls_verify: bool = True
    ca_bundle: FilePath | None = None
    auth: Annotated[BasicAuth | BearerAuth, Field(discriminator="kind")] | None = None
    client_cert: ClientCertificate | None = Field(None, description="Certificate to present to portals that ask")

    @model_validator(mode="after")
    def _consistent(self) -> HttpParams:
        if self.port is not None and self.address is None:
            raise ValueError("port needs address (the URL carries its own port)")
        if self.method == "HEAD" and (self.contains or self.regex or self.title):
            raise ValueError("a HEAD request has no body to check: drop title/contains/regex or use GET")
        return self


class HttpSettings(StrictModel):
    threads: int = Field(16, ge=1, le=512, description="Blocking libcurl transfers running at once; keep the "
                                                       "collector's concurrency at or below it")
    ca_bundle: FilePath | None = Field(None, description="Default CA bundle (else the system's)")
    user_agent: str = f"egov-agent/{__version__}"
