"""Validated network addresses for collector parameters, with an optional safety allowlist.

``EGOV_AGENT_PROBE_ALLOW`` (comma-separated networks, e.g. ``127.0.0.0/8,::1/128``), when set,
makes the agent refuse to start probing any target address outside those networks, or any host
name but ``localhost``. Tests, the demo and benchmarks set it, so a province configuration naming
the real network (10.x) can be validated (``check-config``) on a workstation but never probed from
it by mistake.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Annotated

from pydantic import AfterValidator

ALLOW_ENV = "EGOV_AGENT_PROBE_ALLOW"
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class ProbeNotAllowed(Exception):
    """A target address lies outside EGOV_AGENT_PROBE_ALLOW."""


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    raw = os.environ.get(ALLOW_ENV, "").strip()
    if not raw:
        return None
    return [ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()]


def check_allowed(value: str) -> None:
    networks = allowed_networks()
    if networks is None:
        return
    if value == "localhost":
        return
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"host names are not allowed while {ALLOW_ENV} is set, got {value!r}") from None
    if not any(address in net for net in networks):
        raise ValueError(f"address {value} is outside {ALLOW_ENV} ({os.environ[ALLOW_ENV]})")


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.match(value):
            raise ValueError(f"expected an IP address or host name, got {value!r}") from None
    return value


Host = Annotated[str, AfterValidator(_check_host)]
