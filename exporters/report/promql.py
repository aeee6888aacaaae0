"""A client of the Prometheus HTTP query API (Prometheus, VictoriaMetrics), keeping every query it made.

The report is only as good as what it can show behind each figure: every query is logged with its
time and its answer, and the xlsx's raw-data sheet lists them, so the department can re-run one
and check the number. Failures become :class:`QueryError` with a sentence that names the server
(never its credentials) and what went wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from agent.config.schema import QueryServer
from agent.domain.secrets import redact
from agent.sources.base import mask_url
from collectors.lazyimport import HTTPX_CLI, masked


class QueryError(Exception):
    """The server could not be asked, or refused, or answered something that is not a query result."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    value: float


@dataclass
class LoggedQuery:
    id: str  # Q1, Q2, ...
    expr: str
    at: float
    series: list[Series] = field(default_factory=list)


class QueryClient:
    def __init__(self, server: QueryServer) -> None:
        self.server = server
        self.url = server.url
        self.log: list[LoggedQuery] = []
        headers = {"Accept": "application/json", "User-Agent": "egov-agent-report"}
        auth = server.auth.for_httpx(headers) if server.auth is not None else None
        verify: Any = server.ca_file if server.ca_file else server.tls_verify
        with masked(HTTPX_CLI):  # here, at the first report: the status page imports this package, and the
            import httpx  # running agent, which never writes a report, need not hold httpx (~12 MiB)

        self._client = httpx.Client(headers=headers, auth=auth, verify=verify, timeout=server.timeout,
                                    follow_redirects=False)

    def _secrets(self) -> list:
        return self.server.auth.secrets() if self.server.auth is not None else []

    def query(self, expr: str, at: float) -> LoggedQuery:
        """An instant query at ``at``; the answer is also kept in the log."""
        with masked(HTTPX_CLI):
            import httpx

        where = mask_url(self.url)
        try:
            response = self._client.post(f"{self.url}/api/v1/query", data={"query": expr, "time": f"{at:.3f}"})
        except httpx.HTTPError as exc:
            text = redact(str(exc) or type(exc).__name__, self._secrets())
            raise QueryError(f"cannot reach the query API at {where}: {text}") from None
        if response.status_code in (401, 403):
            raise QueryError(f"{where} refused the credentials (HTTP {response.status_code}); "
                             "check report.prometheus.auth")
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            raise QueryError(f"{where} did not answer with JSON (HTTP {response.status_code}): is it the query "
                             f"API of Prometheus or VictoriaMetrics?") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise QueryError(f"{where} refused the query (HTTP {response.status_code}): {str(error)[:300]}\n"
                             f"  query: {expr}")
        data = body.get("data") or {}
        if data.get("resultType") not in ("vector", "scalar"):
            raise QueryError(f"{where}: expected an instant vector for {expr!r}, got {data.get('resultType')!r}")
        result = data.get("result") or []
        if data.get("resultType") == "scalar":
            result = [{"metric": {}, "value": result}]
        series = []
        for item in result:
            try:
                value = float(item["value"][1])
                labels = {str(k): str(v) for k, v in item.get("metric", {}).items()}
            except (KeyError, IndexError, TypeError, ValueError):
                raise QueryError(f"{where}: a malformed sample in the answer to {expr!r}") from None
            if math.isfinite(value):
                series.append(Series(labels, value))
        logged = LoggedQuery(f"Q{len(self.log) + 1}", expr, at, series)
        self.log.append(logged)
        return logged

    def close(self) -> None:
        self._client.close()
