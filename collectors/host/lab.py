"""The lab's stand-in for the THDL server: the agent's host target watches the lab's own process.

The host collector reads the machine it runs on, which the lab cannot fake; what it can give is a
named process to watch, so the demo's data-centre view shows a process table. Its state cannot be
changed at runtime (the process names are fixed in the agent's configuration).
"""

from __future__ import annotations

from typing import Any

import psutil

from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase


class HostSimulator(SimulatorBase):
    kind = "host"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None) -> None:
        super().__init__(pool, seed, peers)
        self.targets: set[str] = set()

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        self.targets.add(target_id)
        return {**params, "processes": [psutil.Process().name()]}

    async def set_state(self, target_id: str, state: str) -> None:
        raise ValueError("the host target reads this machine; its state cannot be changed in the lab")

    def states(self) -> dict[str, str]:
        return dict.fromkeys(self.targets, "up")

    async def close(self) -> None:
        self.targets.clear()
