"""The mcu collector's configuration models (SNMP and HTTP adapters), apart from pysnmp and httpx."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, FilePath, model_validator

from agent.domain.models import StrictModel
from agent.domain.netaddr import PROBED_URL, ProbeHost
from agent.domain.secrets import Secret
from agent.domain.version import __version__
from collectors.http.models import BasicAuth, BearerAuth
from collectors.snmp.models import V3Auth, check_credentials

MiB = 1024 * 1024
Quantity = Literal["active_conferences", "ports_in_use", "ports_total", "registered_endpoints",
                   "largest_conference", "meetings_held", "endpoint_ids"]
PROFILES: dict[str, dict[Quantity, str]] = {
    # Jitsi Videobridge, private REST interface (default port 8080), GET /colibri/stats.
    "jitsi_videobridge": {
        "active_conferences": "conferences",
        "ports_in_use": "participants",
        "largest_conference": "largest_conference",
        "meetings_held": "total_conferences_created",
    },
}
MAX_ENDPOINTS = 10_000  # ids read from one MCU at most (a walk or a JSON list)
_ENDPOINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$")


def _oid(value: Any) -> tuple[int, ...]:
    if isinstance(value, str) and re.fullmatch(r"\.?\d+(\.\d+)+", value.strip()):
        parts = tuple(int(p) for p in value.strip().lstrip(".").split("."))
        if parts[0] <= 2 and all(p < 2**32 for p in parts):
            return parts
    raise ValueError(f"expected a numeric OID such as 1.3.6.1.4.1.9.9.1.0, got {value!r}")


def _field_path(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a JSON pointer (/a/b), a dotted path (a.b) or a JSONPath ($.a.b)")
    if value.startswith("$"):
        from collectors.httpjson import compile_path  # jsonpath-ng's parser, only for a JSONPath

        compile_path(value)
        return value
    if value.startswith("/"):
        return value
    if any(not part for part in value.split(".")):
        raise ValueError(f"empty segment in the dotted path {value!r}")
    return value


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("put credentials under auth: (as secret references), not in the URL")
    return value


def _endpoint_id(value: str) -> str:
    if not _ENDPOINT_ID.match(value):
        raise ValueError(f"an endpoint id is letters, digits and ._@:+- (at most 128), got {value!r}")
    return value


Oid = Annotated[tuple[int, ...], BeforeValidator(_oid)]
FieldPath = Annotated[str, AfterValidator(_field_path)]
EndpointId = Annotated[str, AfterValidator(_endpoint_id)]


_SNMP_ONLY = ("host", "port", "community", "v3", "oids", "retries")
_HTTP_ONLY = ("url", "profile", "auth", "fields", "ca_bundle", "max_body_bytes")


class McuParams(StrictModel):
    adapter: Literal["snmp", "http"]
    # adapter: snmp
    host: ProbeHost | None = None
    port: int = Field(161, ge=1, le=65535)
    version: Annotated[Literal["2c", "3"], BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] = "2c"
    community: Secret | None = Field(None, description="v2c community, as env:NAME or file:/path")
    v3: V3Auth | None = None
    oids: dict[Quantity, Oid] = Field(default_factory=dict,
                                      description="OID per quantity; endpoint_ids names a table column to walk")
    retries: int = Field(1, ge=0, le=5)
    # adapter: http
    url: Annotated[str, AfterValidator(_check_url), PROBED_URL] | None = None
    profile: Literal["jitsi_videobridge"] | None = None
    auth: Annotated[BasicAuth | BearerAuth, Field(discriminator="kind")] | None = None
    fields: dict[Quantity, FieldPath] = Field(default_factory=dict,
                                              description="JSON pointer, dotted path or JSONPath per quantity")
    tls_verify: bool = True
    ca_bundle: FilePath | None = None
    max_body_bytes: int = Field(MiB, ge=1024, le=64 * MiB)
    # both
    expected_endpoints: list[EndpointId] = Field(
        default_factory=list, description="Endpoint ids the MCU should list as registered (exported as labels)")

    @model_validator(mode="after")
    def _adapter_fields(self) -> McuParams:
        given = self.model_fields_set
        if self.adapter == "snmp":
            wrong = [k for k in _HTTP_ONLY if k in given]
            if wrong:
                raise ValueError(f"{', '.join(wrong)}: only for adapter http")
            if self.host is None:
                raise ValueError("adapter snmp needs host")
            if not self.oids:
                raise ValueError("adapter snmp needs oids: the OID of each quantity the MCU reports")
            check_credentials(self.version, self.community, self.v3)
        else:
            wrong = [k for k in (*_SNMP_ONLY, "version") if k in given]
            if wrong:
                raise ValueError(f"{', '.join(wrong)}: only for adapter snmp")
            if self.url is None:
                raise ValueError("adapter http needs url")
            if not self.fields and self.profile is None:
                raise ValueError("adapter http needs fields (a path per quantity) or a profile")
        if self.expected_endpoints and "endpoint_ids" not in self.quantities():
            raise ValueError("expected_endpoints needs endpoint_ids (where the MCU lists its registrations)")
        return self

    def quantities(self) -> dict[Quantity, Any]:
        """Quantity -> OID (snmp) or field path (http, the profile's overridden by fields)."""
        if self.adapter == "snmp":
            return dict(self.oids)
        return {**PROFILES.get(self.profile or "", {}), **self.fields}


class McuSettings(StrictModel):
    snmp_timeout: float = Field(2.0, gt=0, le=60, description="Seconds to wait for each SNMP answer")
    user_agent: str = f"egov-agent/{__version__}"
