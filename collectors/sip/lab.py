"""Simulated video-conference endpoints for ``sip`` targets: a SIP responder per codec on loopback.

Each endpoint (điểm cầu) listens on its own loopback address, the one its ``icmp`` target gets too
(``AddressPool.take`` of the configured address), on an ephemeral port over the target's transport
(UDP datagrams or TCP with Content-Length framing), and answers OPTIONS the way a codec's SIP stack
does (RFC 3261 §8.2.6: Via, From, Call-ID and CSeq copied, a tag added to To). Any other request
gets 405 Method Not Allowed; anything that is not SIP is ignored.

States (``set_state``): ``up`` (200 OK); ``down`` (the codec is off: requests are read and dropped,
so the agent times out); ``refused`` (the socket is closed: ICMP port unreachable or TCP RST);
``slow`` (answers ``slow_delay`` seconds late); ``busy`` (486 Busy Here: a live stack, ready under
the default ``ready_status``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase, close_listeners

log = logging.getLogger(__name__)

STATES = ("up", "down", "refused", "slow", "busy")
MAX_REQUEST = 65536


@dataclass
class Endpoint:
    target_id: str
    host: str
    port: int
    transport: str
    user: str = ""  # the id it registers on the MCU with (its Request-URI user), else its target id
    state: str = "up"
    answered: int = 0
    udp: asyncio.DatagramTransport | None = None
    tcp: asyncio.Server | None = None
    connections: set[asyncio.StreamWriter] = field(default_factory=set)


def answer(request: bytes, state: str, tag: str) -> bytes | None:
    """The response to one request, or None if it is not a SIP request."""
    try:
        text = request.decode("utf-8")
    except UnicodeDecodeError:
        return None
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0].lstrip("\n")
    lines = head.split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0":
        return None
    method = parts[0]
    copied: list[str] = []
    to = ""
    for line in lines[1:]:
        name = line.partition(":")[0].strip().lower()
        if name in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            copied.append(line)
        elif name in ("to", "t"):
            to = line if ";tag=" in line else f"{line};tag={tag}"
    if method == "ACK":
        return None
    status = "405 Method Not Allowed" if method != "OPTIONS" else {"busy": "486 Busy Here"}.get(state, "200 OK")
    lines_out = [f"SIP/2.0 {status}", *copied, to, "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO",
                 "Accept: application/sdp", "User-Agent: egov-lab-codec/1.0", "Content-Length: 0"]
    return ("\r\n".join(line for line in lines_out if line) + "\r\n\r\n").encode("utf-8")


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, simulator: SipSimulator, endpoint: Endpoint) -> None:
        self.simulator = simulator
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        endpoint = self.endpoint
        if endpoint.state == "down" or endpoint.udp is None:
            return
        response = answer(data, endpoint.state, self.simulator.tag(endpoint))
        if response is None:
            return
        endpoint.answered += 1
        delay = self.simulator.slow_delay if endpoint.state == "slow" else 0.0
        transport = endpoint.udp
        asyncio.get_running_loop().call_later(delay, _send, transport, response, addr)


def _send(transport: asyncio.DatagramTransport, data: bytes, addr: tuple) -> None:
    if not transport.is_closing():
        transport.sendto(data, addr)


class SipSimulator(SimulatorBase):
    kind = "sip"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None,
                 slow_delay: float = 8.0) -> None:
        super().__init__(pool, seed, peers)
        self.slow_delay = slow_delay
        self.endpoints: dict[str, Endpoint] = {}
        self._tags: dict[str, str] = {}

    def tag(self, endpoint: Endpoint) -> str:
        return self._tags.setdefault(endpoint.target_id, secrets.token_hex(4))

    # -- the simulator interface of the lab -----------------------------------------------------

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        host = self.pool.take(str(params.get("host", target_id)))
        transport = str(params.get("transport", "udp"))
        endpoint = Endpoint(target_id, host, 0, transport, str(params.get("user") or target_id))
        await self._open(endpoint)
        self.endpoints[target_id] = endpoint
        if not up:
            await self.set_state(target_id, "down")
        return {**params, "host": host, "port": endpoint.port}

    async def set_state(self, target_id: str, state: str) -> None:
        endpoint = self.endpoints[target_id]
        if state not in STATES:
            raise ValueError(f"sip targets can be {', '.join(STATES)}, not {state!r}")
        if state == "refused":
            await self._close(endpoint)
        elif endpoint.state == "refused":
            await self._open(endpoint)
        endpoint.state = state

    def states(self) -> dict[str, str]:
        return {t: e.state for t, e in self.endpoints.items()}

    def registered(self) -> list[str]:
        """Ids of the endpoints whose SIP stack answers: what an MCU lists as registered."""
        return sorted(e.user for e in list(self.endpoints.values()) if e.state in ("up", "slow", "busy"))

    async def close(self) -> None:
        for endpoint in self.endpoints.values():
            await self._close(endpoint)

    # -- sockets ----------------------------------------------------------------------------------

    async def _open(self, endpoint: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        if endpoint.transport == "tcp":
            endpoint.tcp = await asyncio.start_server(lambda r, w: self._serve(endpoint, r, w), endpoint.host,
                                                      endpoint.port)
            endpoint.port = endpoint.tcp.sockets[0].getsockname()[1]
        else:
            transport, _ = await loop.create_datagram_endpoint(lambda: _UdpEndpoint(self, endpoint),
                                                               local_addr=(endpoint.host, endpoint.port))
            endpoint.udp = transport
            endpoint.port = transport.get_extra_info("sockname")[1]

    async def _close(self, endpoint: Endpoint) -> None:
        await close_listeners(endpoint.udp, endpoint.tcp, endpoint.connections)
        endpoint.udp = endpoint.tcp = None

    async def _serve(self, endpoint: Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint.connections.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > MAX_REQUEST:
                    break
                length = 0
                for line in head.decode("utf-8", "replace").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() in ("content-length", "l") and value.strip().isdigit():
                        length = min(int(value.strip()), MAX_REQUEST)
                if length:
                    await reader.readexactly(length)
                if endpoint.state == "down":
                    continue
                response = answer(head, endpoint.state, self.tag(endpoint))
                if response is None:
                    continue
                if endpoint.state == "slow":
                    await asyncio.sleep(self.slow_delay)
                endpoint.answered += 1
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except Exception:  # a bad client must not take the endpoint down
            log.debug("lab sip %s: connection failed", endpoint.target_id, exc_info=True)
        finally:
            endpoint.connections.discard(writer)
            writer.close()
