"""The interface between the lab (agent/lab) and the simulators the kinds bring.

A kind's descriptor names its simulator class (``simulator="collectors.<kind>.lab:<Class>"``); the lab
imports it on first use, constructs one per lab and hands it the kind's targets. The lab knows no kind by
name: what a simulator needs of another kind it asks for through :class:`Peers` (the MCU lists the SIP
endpoints that answer as registered), and what it needs prepared before the agent's configuration can be
validated (a secret it provides, such as the SNMP community) it does in ``prepare_environment``.
:class:`SimulatorBase` gives the optional parts their usual no-op; a simulator may also implement the
protocols without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

from collectors.lab_addresses import AddressPool

DEFAULT_SEED = 59  # the demo's draw, so that its figures are the same from one run to the next


class Peers(Protocol):
    """What a simulator may ask of the lab that started it."""

    def simulator(self, kind: str) -> Simulator | None:
        """The lab's simulator of another kind, constructed on first ask; None if that kind has none."""


class Simulator(Protocol):
    """One kind's stand-in peers on loopback: one per target, each breakable through the lab's control API.

    ``start`` runs once before the first ``add``; ``add`` starts a target's peer (up or down) and returns the
    target's params pointed at it; ``set_state`` is the fault API (``POST /targets/<id>/<state>``: KeyError
    for a target it does not simulate, ValueError for a state it cannot make, which the API answers 400);
    ``states`` is ``GET /targets``; ``close`` stops every peer and undoes what ``start`` did. A simulator
    with ``close_first`` changes the machine outside its own process (nftables tables): the lab closes it
    before the others, so that one of them hanging cannot leave that change behind.
    """

    kind: ClassVar[str]
    close_first: ClassVar[bool]

    async def start(self) -> None: ...

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]: ...

    async def set_state(self, target_id: str, state: str) -> None: ...

    def states(self) -> dict[str, str]: ...

    async def close(self) -> None: ...


class SimulatorClass(Protocol):
    """What a descriptor's ``simulator`` names: constructed from the lab's address pool, its seed (every
    random draw follows it) and the lab itself as :class:`Peers`."""

    def __call__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None) -> Simulator: ...

    @staticmethod
    def prepare_environment() -> None:
        """Put in the environment what the simulated peers expect of the agent (a secret the province's
        configuration names): the lab calls it before the configuration is validated."""


class SimulatorBase:
    """Keeps the pool, the seed and the peers, and gives ``start``, ``prepare_environment`` and
    ``close_first`` their usual no-op; subclasses write add, set_state, states and close."""

    kind: ClassVar[str]
    close_first: ClassVar[bool] = False

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None) -> None:
        self.pool = pool
        self.seed = seed
        self.peers = peers

    @staticmethod
    def prepare_environment() -> None:
        """Nothing to provide."""

    async def start(self) -> None:
        """Nothing to prepare."""


async def close_listeners(udp: asyncio.DatagramTransport | None, tcp: asyncio.Server | None,
                          connections: Iterable[asyncio.StreamWriter]) -> None:
    """Close a peer listening on UDP and TCP on one port (a SIP endpoint, a DNS server) and the TCP
    connections it holds open; a connection slow to close is given a second, then left."""
    if udp is not None:
        udp.close()
    if tcp is not None:
        tcp.close()
        for writer in list(connections):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(tcp.wait_closed(), 1.0)
