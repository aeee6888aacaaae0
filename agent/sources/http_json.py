"""HTTP JSON APIs of application systems: document management (QLVB), one-stop, public-service portal.

One GET per reporting period, with the period's bounds in the query string (``{period_start}``,
``{period_end}``, ``{period_last_day}``); each series maps JSON paths to a unit code and the
numerator and denominator (or value), per item of a list or once for the whole body.

The HTTP and the JSONPath are ``collectors.httpjson``'s (httpx and jsonpath-ng, the one client the
mcu collector uses too; why those two is said there): a deadline around each GET, TLS contexts
shared across sources, a body cap, and matches that carry their full path, so an error can name the
exact item (``$.don_vi[3].van_ban_di``).

A body that is not JSON, lacks a mapped field or holds text where a number belongs fails the
whole fetch with a labelled error naming the path: partial figures would skew a province's rate,
so the previous good values are kept instead. Credentials never follow a redirect (redirects are
not followed) and never appear in logs or errors.

Each fetch runs in a short-lived child process (agent.sources.child running :func:`fetch_in_child`,
from the runner's thread pool), as sql fetches do: a source fetches every 30 minutes or hour, and
httpx with anyio and httpcore (~12 MiB) would otherwise stay in the long-running agent for good. The
child gets the settings (the credentials among them) on its stdin, never its command line, and
answers the records or the failure's reason and message; one killed at the fetch's timeout counts
as ``timeout``, one that dies as ``fetch_process``, and the previous values are kept either way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, FilePath, model_validator

from agent.domain.httpauth import AuthSpec, check_api_url
from agent.domain.periods import Period
from agent.domain.secrets import SecretValue
from agent.sources import child
from agent.sources.base import (
    FetchResult,
    Record,
    SeriesName,
    SeriesSpec,
    Source,
    SourceContext,
    SourceError,
    SourceSpec,
    check_template,
    make_record,
    mask_url,
    period_values,
    unit_code,
)
from collectors.httpjson import HttpJsonError, JsonClient, JsonField, parse_jsonpath

MiB = 1024 * 1024
# The client's reasons in the sources' words (egov_source_errors_total{reason}).
_REASONS = {"timeout": "timeout", "auth_error": "auth", "http_status": "http_status", "bad_response": "bad_body",
            "tls_error": "tls"}


def _check_jsonpath(text: str) -> str:
    parse_jsonpath(text)
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
        self._client: JsonClient | None = None
        self._paths: dict[str, JsonField] = {}
        for series in spec.series.values():
            for text in (series.items, series.unit, series.numerator, series.denominator, series.value):
                if text is not None and text not in self._paths:
                    self._paths[text] = JsonField.jsonpath(text)

    def describe(self) -> str:
        return mask_url(self.spec.url)

    def hosts(self) -> list[str]:
        return [urlsplit(self.spec.url).hostname or ""]

    def secrets(self) -> list[SecretValue]:
        return self.spec.auth.secrets() if self.spec.auth is not None else []

    def _http(self) -> JsonClient:
        if self._client is None:
            spec = self.spec
            self._client = JsonClient(headers=spec.headers, auth=spec.auth, tls_verify=spec.tls_verify,
                                      ca_file=str(spec.ca_file) if spec.ca_file else None, max_bytes=spec.max_bytes,
                                      peer="the API")
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(self, periods: dict[str, Period]) -> FetchResult:
        deadline = time.monotonic() + self.spec.timeout
        return await self.context.run_blocking(
            lambda: child.fetch("agent.sources.http_json", "fetch_in_child", (self.spec, periods, deadline), deadline))

    async def fetch_here(self, periods: dict[str, Period]) -> FetchResult:
        """The fetch itself, in this process: what the child runs."""
        # One period after the other: gentle on the province's server, and a refusal stops the rest.
        data: dict[str, dict[str, list[Record]]] = {name: {} for name in self.spec.series}
        for kind in periods:
            body = await self._get(periods[kind])
            for name, series in self.spec.series.items():
                data[name][kind] = self._records(name, series, body, periods[kind])
        return FetchResult(data)

    async def _get(self, period: Period) -> Any:
        values = period_values(period)
        params = {key: template.format(**values) for key, template in self.spec.params.items()}
        try:
            return await self._http().get(self.spec.url, params=params, deadline=self.spec.timeout)
        except HttpJsonError as exc:
            raise SourceError(_REASONS.get(exc.reason, "connect"), f"period {period.name}: {exc.message}") from None

    def _one(self, text: str, node: Any, where: str) -> Any:
        try:
            return self._paths[text].one(node)
        except HttpJsonError as exc:
            raise SourceError(exc.reason, f"{where}{_join(text)}: {exc.message}") from None

    def _records(self, name: str, series: JsonSeries, body: Any, period: Period) -> list[Record]:
        prefix = f"series {name}, period {period.name}: "
        if series.items is None:
            items = [("$", body)]
        else:
            try:
                matches = self._paths[series.items].find(body)  # none at all when the list is empty: a quiet period
            except HttpJsonError as exc:
                raise SourceError(exc.reason, f"{prefix}{series.items}: {exc.message}") from None
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


def fetch_in_child(spec: HttpJsonSpec, periods: dict[str, Period], deadline: float) -> child.FetchAnswer:
    """In the child: one fetch of every series and period, ended at ``deadline`` (``time.monotonic()``)."""
    import asyncio  # here: check-config imports this module and needs no event loop
    source = HttpJsonSource(spec, SourceContext(Path.cwd(), "UTC"))

    async def bounded() -> FetchResult:
        try:
            return await asyncio.wait_for(source.fetch_here(periods), max(0.0, deadline - time.monotonic()))
        finally:
            await source.close()

    try:
        result = asyncio.run(bounded())
    except TimeoutError:
        return "failed", "timeout", f"no complete answer within {spec.timeout:g}s"
    except SourceError as exc:
        return "failed", exc.reason, exc.message
    return child.answer_of(result)


def _tidy(path: str) -> str:
    return path.replace(".[", "[")


def _join(path: str | None) -> str:
    """A field path relative to its item, written after the item's own path."""
    if not path:
        return ""
    return path[1:] if path.startswith("$") else "." + path


SOURCE = HttpJsonSource
