"""The icmp collector's configuration models, apart from its probe, icmplib and asyncio, so that
validating a configuration (``check-config``) need not load them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.domain.models import Share, StrictModel
from agent.domain.netaddr import ProbeHost


class IcmpParams(StrictModel):
    host: ProbeHost
    count: int = Field(5, ge=1, le=1000, description="Echo requests per probe")
    interval: float = Field(0.5, gt=0, le=60, description="Seconds between echo requests")
    payload_size: int = Field(56, ge=0, le=1472, description="Bytes of payload per echo (1472 fills a 1500 MTU)")


class UpRule(StrictModel):
    """Up while the echo loss over the last ``over_probes`` probes is below ``max_loss``."""

    max_loss: Share = Field(0.5, gt=0)
    over_probes: int = Field(3, ge=1, le=100)


class IcmpSettings(StrictModel):
    privileged: Literal["auto", True, False] = "auto"
    up_rule: UpRule = UpRule()


__all__ = ["IcmpParams", "IcmpSettings", "UpRule"]
