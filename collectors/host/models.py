"""The host collector's configuration models, apart from psutil and asyncio.

collectors/host/probe.py imports them from here, so that validating a configuration (``check-config``)
need not load the probe and its libraries.
"""

from __future__ import annotations

from pydantic import Field

from agent.domain.models import StrictModel
from collectors.api import NoSettings

HostSettings = NoSettings  # the kind has no settings: Registry.models looks for <prefix>Settings


class HostParams(StrictModel):
    mountpoints: list[str] | None = Field(
        None, description="Mount points to report; default every real (non-pseudo) filesystem."
    )
    interfaces: list[str] | None = Field(None, description="Network interfaces; default all but loopback.")
    processes: list[str] = Field(default_factory=list, description="Process names that must be running.")
    systemd_units: list[str] = Field(default_factory=list, description="Units that must be active.")


__all__ = ["HostParams", "HostSettings"]
