"""One HTTP/JSON client for the agent's JSON APIs: an MCU's status API (``mcu``) and the application sources
(``agent/sources/http_json.py``).

Why httpx: it is asynchronous, so a fetch runs on the agent's loop and a deadline really ends it (the
request is cancelled, no thread lingers as with requests, whose timeouts are per socket read and let a
server that dribbles bytes hold a thread indefinitely); httpx's own timeouts are per operation too, so
:meth:`JsonClient.get` puts one deadline around the whole exchange, body included. Why jsonpath-ng:
the most used, actively released JSONPath implementation for Python (filters, slices, wildcards), whose
matches carry their full path, so an error can name the exact item (``$.don_vi[3].van_ban_di``). A
JSON pointer (``/a/b/0``) or a dotted path (``a.b.*.id``), the MCU's shorthand, is compiled into the
same jsonpath-ng nodes: one path language, one evaluator.

Redirects are not followed (credentials never go to another origin), the environment's proxies are not
used, a body is read up to ``max_bytes`` and no further, and library messages quoted in an error have
the credentials' secrets scrubbed out. Failures are :class:`HttpJsonError` with a fixed ``reason``:
``timeout``, ``refused``, ``connect_error``, ``tls_error``, ``http_error``, ``auth_error`` (401/403),
``http_status``, ``bad_response`` (too large, not JSON, broken HTTP), and for fields
``missing_field`` and ``wrong_type``. httpx is imported at the first request: validating a
configuration needs only this module's path compiler.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from jsonpath_ng.jsonpath import (
    Child,
    DatumInContext,
    Fields,
    Index,
    JSONPath,
    Root,
    This,
    Wildcard,
)

from agent.domain.secrets import SecretValue, redact
from collectors.lazyimport import HTTPX_CLI, masked

if TYPE_CHECKING:
    import ssl

    import httpx

# Callers log each API's state changes; httpx would log every request's full URL (query tokens too) at INFO.
logging.getLogger("httpx").setLevel(logging.WARNING)


class HttpJsonError(Exception):
    """A failed fetch or field; ``reason`` is a fixed word, ``message`` a sentence without secrets."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Credentials(Protocol):
    """How an API's ``auth:`` reaches httpx: a header it adds, or httpx's basic auth; and what to hide."""

    def for_httpx(self, headers: dict[str, str]) -> Any: ...
    def secrets(self) -> list[SecretValue]: ...


def first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:limit]


# -- TLS ---------------------------------------------------------------------------------------------

# One TLS context per CA file (and its version on disk) and verify setting, shared by every client: each
# holds a CA store of about 1 MiB, and Bắc Giang has a dozen sources.
_CONTEXTS: dict[tuple[str | None, int, bool], ssl.SSLContext] = {}


def ssl_context(ca_file: str | None, tls_verify: bool) -> ssl.SSLContext:
    import ssl

    with masked(HTTPX_CLI):
        import httpx

    key = (ca_file, os.stat(ca_file).st_mtime_ns if ca_file else 0, tls_verify)
    context = _CONTEXTS.get(key)
    if context is None:
        made = ssl.create_default_context(cafile=ca_file) if ca_file else httpx.create_ssl_context(verify=tls_verify)
        context = _CONTEXTS[key] = made
    return context


# -- the client --------------------------------------------------------------------------------------


class JsonClient:
    """GETs of one API's JSON documents, on one httpx connection pool (made at the first request)."""

    def __init__(self, *, headers: Mapping[str, str] | None = None, auth: Credentials | None = None,
                 ca_file: str | None = None, tls_verify: bool = True, max_bytes: int = 16 * 1024 * 1024,
                 peer: str = "the server") -> None:
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._auth = auth
        self._ca_file = ca_file
        self._tls_verify = tls_verify
        self.max_bytes = max_bytes
        self._peer = peer  # who refused, in messages: "the MCU", "the API"
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        with masked(HTTPX_CLI):
            import httpx

        if self._client is None:
            headers = dict(self._headers)
            auth = self._auth.for_httpx(headers) if self._auth is not None else None
            self._client = httpx.AsyncClient(headers=headers, auth=auth, follow_redirects=False, trust_env=False,
                                             verify=ssl_context(self._ca_file, self._tls_verify), timeout=None)
        return self._client

    async def get(self, url: str, params: Mapping[str, str] | None = None, deadline: float | None = None) -> Any:
        """The JSON document at ``url``, within ``deadline`` seconds for the whole exchange."""
        body = await self._body(url, params, deadline)
        try:
            return json.loads(bytes(body))
        except RecursionError:  # the C decoder recurses once per level: "[[[[..." a million deep
            raise HttpJsonError("bad_response", "the body is JSON nested too deep to read") from None
        except ValueError as exc:  # not UTF-8, not JSON, or an integer of more digits than Python converts
            raise HttpJsonError("bad_response", f"the body is not JSON: {first_line(exc, 120)}") from None

    async def _body(self, url: str, params: Mapping[str, str] | None, deadline: float | None) -> bytearray:
        import asyncio  # here, not at the top: check-config reads this module's paths, not the network

        with masked(HTTPX_CLI):
            import httpx

        body = bytearray()
        try:
            async with asyncio.timeout(deadline), self._http().stream("GET", url, params=params) as response:
                if response.status_code in (401, 403):
                    raise HttpJsonError("auth_error", f"HTTP {response.status_code}: {self._peer} refused the "
                                        "credentials")
                if not 200 <= response.status_code < 300:
                    raise HttpJsonError("http_status", f"HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise HttpJsonError("bad_response", f"body larger than {self.max_bytes} bytes")
        except (TimeoutError, httpx.TimeoutException):
            raise HttpJsonError("timeout", f"no complete answer within {deadline:g}s" if deadline is not None
                                else "the connection timed out") from None
        except httpx.HTTPError as exc:
            secrets = self._auth.secrets() if self._auth is not None else []
            raise HttpJsonError(_http_reason(exc), redact(f"{type(exc).__name__}: {first_line(exc)}", secrets)
                                ) from None
        return body

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _http_reason(exc: httpx.HTTPError) -> str:
    with masked(HTTPX_CLI):
        import httpx

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "SSL" in text or "CERTIFICATE" in text.upper():
        return "tls_error"
    if isinstance(exc, httpx.ConnectError):
        return "refused" if "refused" in text.lower() else "connect_error"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "bad_response"
    return "http_error"


# -- fields ------------------------------------------------------------------------------------------


class _Member(Fields):
    """A pointer's or dotted path's segment of digits: an object's member, or an array's element (RFC 6901)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self._index = Index(int(key))

    def find(self, datum: Any) -> list[DatumInContext]:
        datum = DatumInContext.wrap(datum)
        if isinstance(datum.value, list):
            return self._index.find(datum)
        return super().find(datum)


def _steps(node: JSONPath) -> list[JSONPath]:
    """A chain ``a.b[0]`` as its steps, evaluated one after the other (as Child does) to say where it broke."""
    if isinstance(node, Child):
        return _steps(node.left) + _steps(node.right)
    return [node]


def _spreads(step: JSONPath) -> bool:
    """Whether a step may match several values: a wildcard, slice, filter, descendants, several fields."""
    if isinstance(step, Fields):
        return len(step.fields) != 1 or step.fields[0] == "*"
    return not isinstance(step, Root | This | Index)


class JsonField:
    """A compiled field path: by default the MCU's forms (:func:`compile_path`); :meth:`jsonpath` for JSONPath
    alone, relative ones included (``van_ban_di`` within an item)."""

    def __init__(self, text: str, expression: JSONPath | None = None) -> None:
        self.text = text
        self.steps = _steps(expression if expression is not None else compile_path(text))
        self.many = any(_spreads(step) for step in self.steps)  # may match several values

    @classmethod
    def jsonpath(cls, text: str) -> JsonField:
        return cls(text, parse_jsonpath(text))

    def find(self, document: Any) -> list[DatumInContext]:
        """Every match; none is an error naming why (``missing_field`` or ``wrong_type``), except a
        spread over an empty list or object, which is no values (a quiet period, an MCU with no one on)."""
        matches = [DatumInContext.wrap(document)]
        for step in self.steps:
            found = [m for datum in matches for m in step.find(datum)]
            if not found:
                parents = [datum.value for datum in matches]
                if _spreads(step) and all(isinstance(p, list | dict) and not p for p in parents):
                    return []
                raise HttpJsonError(*_why_not(step, parents))
            matches = found
        return matches

    def one(self, document: Any) -> Any:
        """The single value the path names."""
        matches = self.find(document)
        if len(matches) != 1:
            raise HttpJsonError("wrong_type" if matches else "missing_field",
                                f"matches {len(matches)} values, expected one" if matches else "missing")
        return matches[0].value

    def value(self, document: Any) -> Any:
        """The list of values of a path that spreads, else the one value."""
        return [m.value for m in self.find(document)] if self.many else self.one(document)


def _why_not(step: JSONPath, parents: list[Any]) -> tuple[str, str]:
    """(reason, detail) of a step that matched nothing: absent where it could be, or through the wrong type."""
    if any(p is None for p in parents):
        return "missing_field", "missing"
    if isinstance(step, Fields) and all(isinstance(p, dict) for p in parents):
        return "missing_field", "missing"
    if isinstance(step, Index | _Member) and all(isinstance(p, list) for p in parents):
        return "missing_field", f"index {step} past the list's end"
    kinds = sorted({type(p).__name__ for p in parents})
    return "wrong_type", f"cannot take {step} from {'/'.join(kinds)}"


def _jsonpath_parser() -> Any:
    """This thread's jsonpath-ng parser: ``jsonpath_ng.ext.parse`` builds a new one for every path (2 ms,
    a tenth of a second for a province's 50 paths); PLY's parser keeps state while it parses, so one per thread."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        from jsonpath_ng.ext.parser import ExtendedJsonPathParser  # its tables cost 60 ms to import: only when read

        parser = _PARSERS.parser = ExtendedJsonPathParser()
    return parser


_PARSERS = threading.local()


def parse_jsonpath(text: str) -> JSONPath:
    """jsonpath-ng's expression (with its extensions: filters, arithmetic); ValueError when it cannot be read."""
    from jsonpath_ng.exceptions import JSONPathError

    try:
        return _jsonpath_parser().parse(text)
    except (JSONPathError, ValueError, TypeError, AttributeError) as exc:  # the parser raises several kinds
        raise ValueError(f"invalid JSONPath {text!r}: {first_line(exc)}") from None


def compile_path(text: str) -> JSONPath:
    """The expression of a JSONPath (``$...``), a JSON pointer (``/a/0``) or a dotted path (``a.*.id``);
    ValueError when it cannot be read."""
    if text.startswith("$"):
        return parse_jsonpath(text)
    if text.startswith("/"):  # RFC 6901: ~1 is "/", ~0 is "~"
        keys = [raw.replace("~1", "/").replace("~0", "~") for raw in text[1:].split("/")]
        spread = False
    else:
        keys = text.split(".")
        if any(not key for key in keys):
            raise ValueError(f"empty segment in the dotted path {text!r}")
        spread = True
    node: JSONPath = Root()
    for key in keys:
        step: JSONPath = (Wildcard() if spread and key == "*" else _Member(key) if key.isdigit() else Fields(key))
        node = Child(node, step)
    return node


__all__ = ["Credentials", "HttpJsonError", "JsonClient", "JsonField", "compile_path", "first_line",
           "parse_jsonpath", "ssl_context"]
