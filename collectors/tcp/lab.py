"""Simulated application servers for ``tcp`` targets: one listener per hosted system on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase


class TcpSimulator(SimulatorBase):
    kind = "tcp"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None) -> None:
        super().__init__(pool, seed, peers)
        self.servers: dict[str, asyncio.Server] = {}
        self.addresses: dict[str, tuple[str, int]] = {}

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        host = self.pool.take(str(params.get("host", target_id)))
        server = await asyncio.start_server(_accept, host, 0)
        port = server.sockets[0].getsockname()[1]
        self.servers[target_id] = server
        self.addresses[target_id] = (host, port)
        if not up:
            await self.set_state(target_id, "down")
        return {**params, "host": host, "port": port}

    async def set_state(self, target_id: str, state: str) -> None:
        """``down`` closes the listener (connections refused); ``up`` opens it again on the same port."""
        host, port = self.addresses[target_id]
        server = self.servers.get(target_id)
        if state == "down" and server is not None:
            server.close()
            await server.wait_closed()
            self.servers.pop(target_id)
        elif state == "up" and server is None:
            self.servers[target_id] = await asyncio.start_server(_accept, host, port)
        elif state not in ("up", "down"):
            raise ValueError(f"tcp targets can be up or down, not {state!r}")

    def states(self) -> dict[str, str]:
        return {t: ("up" if t in self.servers else "down") for t in self.addresses}

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()


async def _accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()
