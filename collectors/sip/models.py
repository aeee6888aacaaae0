"""The sip collector's configuration models, apart from its probe and asyncio, so that validating a
configuration (``check-config``) need not load them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from agent.domain.models import StrictModel
from agent.domain.netaddr import ProbeHost
from agent.domain.version import __version__


def _check_status(value: int | str) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"expected a final SIP status (200-699) or class ('2xx'..'6xx'), got {value!r}")
    if isinstance(value, int) and 200 <= value <= 699:
        return value
    if isinstance(value, str) and re.fullmatch(r"[2-6]xx", value):
        return value
    raise ValueError(f"expected a final SIP status (200-699) or class ('2xx'..'6xx'), got {value!r}")


StatusSpec = Annotated[int | str, AfterValidator(_check_status)]


class SipParams(StrictModel):
    host: ProbeHost
    port: int = Field(5060, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "udp"
    user: str | None = Field(None, pattern=r"^[A-Za-z0-9._~+-]{1,64}$",
                             description="User part of the Request-URI (default: none, the device itself)")
    ready_status: list[StatusSpec] | None = Field(
        None, min_length=1, description="Final responses that count as ready (default: any final response)")


class SipSettings(StrictModel):
    t1: float = Field(0.5, gt=0, le=10, description="RFC 3261 T1: first UDP retransmission interval (s)")
    t2: float = Field(4.0, gt=0, le=60, description="RFC 3261 T2: longest UDP retransmission interval (s)")
    from_user: str = Field("egov-agent", pattern=r"^[A-Za-z0-9._~+-]{1,64}$")
    user_agent: str = Field(f"egov-agent/{__version__}", pattern=r"^[\x20-\x7e]{1,128}$")


__all__ = ["SipParams", "SipSettings", "StatusSpec"]
