"""The snmp collector's configuration models, apart from pysnmp.

collectors/snmp.py imports them from here, so that validating a configuration need not load the
collector and pysnmp (12 MiB, a fifth of a second).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from agent.domain.models import StrictModel
from agent.domain.netaddr import ProbeHost
from agent.domain.secrets import Secret


class InterfaceSelector(StrictModel):
    """Which interface is the uplink: exactly one of its ifName (or ifDescr), ifAlias or ifIndex."""

    name: str | None = Field(None, min_length=1)
    alias: str | None = Field(None, min_length=1)
    index: int | None = Field(None, ge=1, le=2**31 - 1)

    @model_validator(mode="after")
    def _exactly_one(self) -> InterfaceSelector:
        given = [k for k in ("name", "alias", "index") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of name, alias or index")
        return self


class V3Auth(StrictModel):
    """SNMPv3 authPriv: the only v3 level the collector speaks (no keys in the clear on a WAN)."""

    user: str = Field(min_length=1, max_length=32)
    auth_key: Secret
    priv_key: Secret
    auth_protocol: Literal["sha", "sha224", "sha256", "sha384", "sha512"] = "sha"
    priv_protocol: Literal["aes", "aes192", "aes256"] = "aes"


def check_credentials(version: str, community: Secret | None, v3: V3Auth | None) -> None:
    """The one rule of every SNMP-speaking kind (snmp, power, mcu): v2c has a community, v3 a v3 block."""
    if version == "2c" and (community is None or v3 is not None):
        raise ValueError("version 2c needs a community (and no v3 block)")
    if version == "3" and (v3 is None or community is not None):
        raise ValueError("version 3 needs a v3 block (and no community)")


class SnmpParams(StrictModel):
    host: ProbeHost
    port: int = Field(161, ge=1, le=65535)
    version: Annotated[Literal["2c", "3"], BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] = "2c"
    community: Secret | None = Field(None, description="v2c community, as env:NAME or file:/path")
    v3: V3Auth | None = None
    interface: InterfaceSelector
    timeout: float | None = Field(None, gt=0, le=60, description="Seconds per request; default: settings")
    retries: int | None = Field(None, ge=0, le=5, description="Retries per request; default: settings")

    @model_validator(mode="after")
    def _credentials_match_version(self) -> SnmpParams:
        check_credentials(self.version, self.community, self.v3)
        return self


class SnmpSettings(StrictModel):
    timeout: float = Field(2.0, gt=0, le=60, description="Seconds to wait for each answer")
    retries: int = Field(1, ge=0, le=5)
    max_repetitions: int = Field(25, ge=1, le=200, description="GETBULK max-repetitions")
    all_interfaces: bool = Field(False, description="Walk and export every interface, not only the uplink")
    names_refresh: float = Field(3600.0, gt=0, description="Seconds before ifName/ifAlias are read again")
