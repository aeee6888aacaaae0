"""The power collector's configuration models (UPS, PDU and sensor profiles), apart from pysnmp."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from agent.domain.models import StrictModel
from agent.domain.netaddr import ProbeHost
from agent.domain.secrets import Secret
from collectors.snmp.models import V3Auth, check_credentials

Profile = Literal["ups_mib", "xups", "apc_rpdu", "geist"]


class PowerParams(StrictModel):
    host: ProbeHost
    port: int = Field(161, ge=1, le=65535)
    profile: Profile = Field(description="The MIB the device speaks: ups_mib, xups, apc_rpdu or geist")
    version: Annotated[Literal["2c", "3"], BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] = "2c"
    community: Secret | None = Field(None, description="v2c community, as env:NAME or file:/path")
    v3: V3Auth | None = None
    timeout: float | None = Field(None, gt=0, le=60, description="Seconds per request; default: settings")
    retries: int | None = Field(None, ge=0, le=5, description="Retries per request; default: settings")

    @model_validator(mode="after")
    def _credentials_match_version(self) -> PowerParams:
        check_credentials(self.version, self.community, self.v3)
        return self


class PowerSettings(StrictModel):
    timeout: float = Field(2.0, gt=0, le=60, description="Seconds to wait for each answer")
    retries: int = Field(1, ge=0, le=5)
    max_repetitions: int = Field(25, ge=1, le=200, description="GETBULK max-repetitions")
    # Thresholds of the generated alerts (exporters/rules.py), kept beside the collector they judge.
    temperature_high_celsius: float = Field(
        27.0, gt=0, le=60, description="EgovTemperatureHigh above this; 27 °C is the top of ASHRAE's 18-27 °C "
        "recommended envelope for data rooms")
    runtime_low_seconds: float = Field(600.0, gt=0, le=86400, description="EgovUpsLowRuntime below this")
