"""Credentials for the HTTP APIs the agent reads (an application's JSON API, the report's query API):
one schema and one way to hand them to httpx, so that both accept the same `auth:` and neither can
put a secret where the other would not."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from agent.domain.models import StrictModel
from agent.domain.secrets import Secret, SecretValue


def check_api_url(url: str) -> str:
    """An http(s) URL with a host and without credentials (those go in `auth:`; the URL is never echoed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in the URL; use auth: with a secret reference")
    return url


class BasicAuth(StrictModel):
    username: str
    password: Secret


class HeaderAuth(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9-]+$")
    value: Secret


class AuthSpec(StrictModel):
    """Exactly one of: a bearer token, basic credentials, or a custom header (X-API-Key)."""

    bearer: Secret | None = None
    basic: BasicAuth | None = None
    header: HeaderAuth | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AuthSpec:
        if sum(x is not None for x in (self.bearer, self.basic, self.header)) != 1:
            raise ValueError("give exactly one of bearer, basic, header")
        return self

    def secrets(self) -> list[SecretValue]:
        """What a message about this API must never show."""
        return [s for s in (self.bearer, self.basic and self.basic.password, self.header and self.header.value)
                if s]

    def for_httpx(self, headers: dict[str, str]) -> Any:
        """Adds the bearer or custom header to ``headers``; returns httpx's basic auth, or None."""
        if self.bearer is not None:
            headers["Authorization"] = "Bearer " + self.bearer.reveal()
        elif self.header is not None:
            headers[self.header.name] = self.header.value.reveal()
        elif self.basic is not None:
            import httpx

            return httpx.BasicAuth(self.basic.username, self.basic.password.reveal())
        return None
