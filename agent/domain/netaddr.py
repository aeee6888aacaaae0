"""Validated network addresses for collector parameters, with an optional safety allowlist.

``EGOV_AGENT_PROBE_ALLOW`` (comma-separated networks, e.g. ``127.0.0.0/8,::1/128``), when set,
makes the agent refuse to start probing any target address outside those networks, or any host
name but ``localhost``. Tests, the demo and benchmarks set it, so a province configuration naming
the real network (10.x) can be validated (``check-config``) on a workstation but never probed from
it by mistake.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel

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


@dataclass(frozen=True)
class Probed:
    """``Annotated`` marker of a parameter the probe sends traffic to (see :func:`probe_hosts`).

    ``url``: the value is a URL and its host is the address. ``unless``: a sibling field that, when set,
    is where the probe connects instead (an http target's ``address`` overrides its URL's host).
    """

    url: bool = False
    unless: str | None = None


ProbeHost = Annotated[str, AfterValidator(_check_host), Probed()]
"""A host (IP address or name) a probe sends traffic to: what EGOV_AGENT_PROBE_ALLOW checks."""
PROBED_URL = Probed(url=True)


def _marker(metadata: list[Any] | tuple[Any, ...]) -> Probed | None:
    return next((m for m in metadata if isinstance(m, Probed)), None)


def _hosts_in(annotation: Any, metadata: tuple[Any, ...], value: Any, owner: BaseModel) -> Iterator[str]:
    """The probed hosts in ``value``, read against its declared type (unions, lists, mappings, models)."""
    if value is None:
        return
    if isinstance(value, BaseModel):
        yield from probe_hosts(value)
        return
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        yield from _hosts_in(inner, (*metadata, *extra), value, owner)
        return
    marker = _marker(metadata)
    if marker is not None and isinstance(value, str):
        if marker.unless is None or getattr(owner, marker.unless, None) is None:
            yield (urlsplit(value).hostname or "") if marker.url else value
        return
    if origin in (Union, types.UnionType):
        for arm in get_args(annotation):
            if arm is not type(None):
                yield from _hosts_in(arm, metadata, value, owner)
        return
    if isinstance(value, list | tuple | set | frozenset):
        args = get_args(annotation)
        for item in value:
            yield from _hosts_in(args[0] if args else Any, (), item, owner)
    elif isinstance(value, dict):
        args = get_args(annotation)
        for item in value.values():
            yield from _hosts_in(args[1] if len(args) == 2 else Any, (), item, owner)


@functools.cache
def _host_fields(cls: type[BaseModel]) -> tuple[tuple[str, Any, tuple[Any, ...]], ...]:
    """The fields of a model that may hold a probed address: read once per model, not per target."""
    return tuple((name, info.annotation, tuple(info.metadata)) for name, info in cls.model_fields.items()
                 if _marker(info.metadata) is not None or declares_probe_hosts(info.annotation))


def probe_hosts(model: BaseModel) -> list[str]:
    """Every address a probe with these parameters sends traffic to: the values typed ProbeHost or PROBED_URL."""
    found: list[str] = []
    for name, annotation, metadata in _host_fields(type(model)):
        for host in _hosts_in(annotation, metadata, getattr(model, name), model):
            if host not in found:
                found.append(host)
    return found


def declares_probe_hosts(annotation: Any, seen: frozenset[type] = frozenset()) -> bool:
    """Whether a type (a Params model, nested models and containers included) has a ProbeHost or PROBED_URL field."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        return any(_marker(info.metadata) is not None or declares_probe_hosts(info.annotation, seen | {annotation})
                   for info in annotation.model_fields.values())
    if get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        return _marker(extra) is not None or declares_probe_hosts(inner, seen)
    return any(declares_probe_hosts(arg, seen) for arg in get_args(annotation))
