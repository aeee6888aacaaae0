"""HTTP JSON APIs of application systems: document management (QLVB), one-stop, public-service portal.

One GET per reporting period, with the period's bounds in the query string (``{period_start}``,
``{period_end}``, ``{period_last_day}``); each series maps JSON paths to a unit code and the
numerator and denominator (or value), per item of a list or once for the whole body.

Why httpx: it is asynchronous, so a fetch runs on the agent's loop and its timeout really ends
it (the request is cancelled, no thread lingers as with requests, whose timeouts are per socket
read and let a server that dribbles bytes hold a thread indefinitely). Why jsonpath-ng: the most
used, actively released JSONPath implementation for Python (filters, slices, wildcards), whose
matches carry their full path, so an error can name the exact item (``$.don_vi[3].van_ban_di``).

A body that is not JSON, lacks a mapped field or holds text where a number belongs fails the
whole fetch with a labelled error naming the path: partial figures would skew a province's rate,
so the previous good values are kept instead. Credentials never follow a redirect (redirects are
not followed) and never appear in logs or errors.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext import parse as parse_jsonpath
from pydantic import AfterValidator, Field, FilePath, model_validator

from agent.httpauth import AuthSpec, check_api_url
from agent.periods import Period
from agent.secrets import SecretValue
from agent.sources.base import (
    FetchResult,
    Record,
    SeriesName,
    SeriesSpec,
    Source,
    SourceError,
    SourceSpec,
    check_template,
    first_line,
    make_record,
    mask_url,
    period_values,
    redact,
    unit_code,
)

if TYPE_CHECKING:
    import httpx

MiB = 1024 * 1024
# The runner logs each source's state changes; httpx would log every request's full URL at INFO.
logging.getLogger("httpx").setLevel(logging.WARNING)


# One TLS context per CA file (and its version on disk) and verify setting, shared by every source: each holds
# a CA store of about 1 MiB, and Bắc Giang has a dozen sources.
_CONTEXTS: dict[tuple[str | None, int, bool], ssl.SSLContext] = {}


def _ssl_context(ca_file: str | None, tls_verify: bool) -> ssl.SSLContext:
    import httpx

    key = (ca_file, os.stat(ca_file).st_mtime_ns if ca_file else 0, tls_verify)
    context = _CONTEXTS.get(key)
    if context is None:
        made = ssl.create_default_context(cafile=ca_file) if ca_file else httpx.create_ssl_context(verify=tls_verify)
        context = _CONTEXTS[key] = made
    return context


def _check_jsonpath(text: str) -> str:
    try:
        parse_jsonpath(text)
    except (JSONPathError, ValueError, TypeError, AttributeError) as exc:  # the parser raises several kinds
        raise ValueError(f"invalid JSONPath {text!r}: {first_line(exc)}") from None
    return text


JsonPath = Annotated[str, AfterValidator(_check_jsonpath)]
Template = Annotated[str, AfterValidator(check_template)]


class JsonSeries(SeriesSpec):
    items: JsonPath | None = Field(None, description="Path to the list of per-unit items, e.g. $.don_vi[*]")
    unit: JsonPath | None = Field(None, description="Path to the unit code within an item")
    numerator: JsonPath | None = None
    denominator: JsonPath | None = None
    value: JsonPath | None = None

    @model_validator(mode="after")
    def _unit_needs_items(self):
        if self.unit is not None and self.items is None:
            raise ValueError("unit needs items: the path to the list of per-unit items")
        return self


class HttpJsonSpec(SourceSpec):
    kind: Literal["http_json"]
    url: Annotated[str, AfterValidator(check_api_url)]
    params: dict[str, Template] = Field(default_factory=dict, description="Query parameters; "
                                        "{period_start}, {period_end} and {period_last_day} are filled in")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (no secrets)")
    auth: AuthSpec | None = None
    tls_verify: bool = True
    ca_file: FilePath | None = None
    max_bytes: int = Field(16 * MiB, ge=1024)
    series: dict[SeriesName, JsonSeries] = Field(min_length=1)


class HttpJsonSource(Source):
    kind = "http_json"
    Spec = HttpJsonSpec

    def __init__(self, spec: HttpJsonSpec, context) -> None:
        super().__init__(spec, context)
        self._client: httpx.AsyncClient | None = None
        self._paths: dict[str, Any] = {}
        for series in spec.series.values():
            for text in (series.items, series.unit, series.numerator, series.denominator, series.value):
                if text is not None and text not in self._paths:
                    self._paths[text] = parse_jsonpath(text)

    def describe(self) -> str:
        return mask_url(self.spec.url)

    def hosts(self) -> list[str]:
        return [urlsplit(self.spec.url).hostname or ""]

    def secrets(self) -> list[SecretValue]:
        return self.spec.auth.secrets() if self.spec.auth is not None else []

    def _http(self) -> httpx.AsyncClient:
        import httpx  # here, not at import: check-config validates sources without it

        if self._client is None:
            spec = self.spec
            verify = _ssl_context(str(spec.ca_file) if spec.ca_file else None, spec.tls_verify)
            headers = {"Accept": "application/json", **spec.headers}
            auth = spec.auth.for_httpx(headers) if spec.auth is not None else None
            self._client = httpx.AsyncClient(headers=headers, auth=auth, verify=verify, follow_redirects=False,
                                             timeout=spec.timeout, trust_env=False)
        return self._client

    async def fetch(self, periods: dict[str, Period]) -> FetchResult:
        # One period after the other: gentle on the province's server, and a refusal stops the rest.
        data: dict[str, dict[str, list[Record]]] = {name: {} for name in self.spec.series}
        for kind in periods:
            body = await self._get(periods[kind])
            for name, series in self.spec.series.items():
                data[name][kind] = self._records(name, series, body, periods[kind])
        return FetchResult(data)

    async def _get(self, period: Period) -> Any:
        import httpx

        values = period_values(period)
        params = {key: template.format(**values) for key, template in self.spec.params.items()}
        try:
            async with self._http().stream("GET", self.spec.url, params=params) as response:
                if response.status_code in (401, 403):
                    raise SourceError("auth", f"HTTP {response.status_code}: the API refused the credentials")
                if not 200 <= response.status_code < 300:
                    raise SourceError("http_status", f"HTTP {response.status_code} for period {period.name}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.spec.max_bytes:
                        raise SourceError("bad_body", f"body larger than {self.spec.max_bytes} bytes")
        except httpx.TimeoutException:
            raise SourceError("timeout", f"no answer within {self.spec.timeout:g}s") from None
        except httpx.HTTPError as exc:
            text = redact(first_line(exc), self.secrets())
            reason = "tls" if "SSL" in text or "CERTIFICATE" in text.upper() else "connect"
            raise SourceError(reason, text) from None
        try:
            return json.loads(bytes(body))
        except RecursionError:  # the C decoder recurses once per level: "[[[[..." a million deep
            raise SourceError("bad_body", f"period {period.name}: the body is JSON nested too deep to read") from None
        except ValueError as exc:  # not UTF-8, not JSON, or an integer of more digits than Python converts
            raise SourceError("bad_body", f"period {period.name}: the body is not JSON: {first_line(exc)}") from None

    def _one(self, text: str, node: Any, where: str) -> Any:
        matches = self._paths[text].find(node)
        if not matches:
            raise SourceError("missing_field", f"{where}{_join(text)}: missing")
        if len(matches) > 1:
            raise SourceError("wrong_type", f"{where}{_join(text)}: matches {len(matches)} values, expected one")
        return matches[0].value

    def _records(self, name: str, series: JsonSeries, body: Any, period: Period) -> list[Record]:
        prefix = f"series {name}, period {period.name}: "
        if series.items is None:
            items = [("$", body)]
        else:
            matches = self._paths[series.items].find(body)
            if not matches and not _empty_list_at(series.items, body):
                raise SourceError("missing_field", f"{prefix}{series.items}: missing")
            items = [("$." + _tidy(str(m.full_path)), m.value) for m in matches]
        records = []
        for where, item in items:
            at = prefix + ("" if where == "$" else where)
            try:
                unit = unit_code(self._one(series.unit, item, at), at + _join(series.unit)) if series.unit else None
                def field(_role: str, text: str, item: Any = item, at: str = at) -> Any:
                    return self._one(text, item, at)
                records.append(make_record(unit, series, field))
            except ValueError as exc:
                raise SourceError("wrong_type", f"{at}: {exc}") from None
        return records


def _tidy(path: str) -> str:
    return path.replace(".[", "[")


def _join(path: str | None) -> str:
    """A field path relative to its item, written after the item's own path."""
    if not path:
        return ""
    return path[1:] if path.startswith("$") else "." + path


def _empty_list_at(items_path: str, body: Any) -> bool:
    """``$.don_vi[*]`` matching nothing is fine when ``$.don_vi`` is an empty list (a quiet period)."""
    if not items_path.endswith("[*]"):
        return False
    matches = parse_jsonpath(items_path[:-3]).find(body)
    return len(matches) == 1 and matches[0].value == []


SOURCE = HttpJsonSource
