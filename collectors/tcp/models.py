"""The tcp collector's configuration models, apart from its probe and asyncio, so that validating a
configuration (``check-config``) need not load them.
"""

from __future__ import annotations

from pydantic import Field

from agent.domain.models import StrictModel
from agent.domain.netaddr import ProbeHost
from collectors.api import NoSettings

TcpSettings = NoSettings  # the kind has no settings: Registry.models looks for <prefix>Settings


class TcpParams(StrictModel):
    host: ProbeHost
    port: int = Field(ge=1, le=65535)


__all__ = ["TcpParams", "TcpSettings"]
