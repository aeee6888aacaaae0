"""The lab's DNS server for ``dns`` targets: the province's resolver, on loopback, answering its names.

One server (UDP and TCP on one port) per configured ``server`` address, at the loopback address the lab's
pool gives that address, so every name asked of the province's resolver is asked of the same simulated one.
Messages are parsed and built by dnspython; only the names the targets ask are known, anything else is
NXDOMAIN. A portal's name answers, unless its target expects other addresses, the loopback address the
lab gives the portal's host name (``AddressPool.take``, as the http simulator keys it), so in the lab the
name and the portal it names meet. Other types get a plausible record of the name (MX ``mail.<name>``,
TXT ``v=spf1 -all``...); DS and DNSKEY get none. A target asking ``dnssec`` gets the AD flag, as from a
validating resolver.

States (``set_state``, per target): ``up``; ``down`` (queries read and dropped: the agent times out);
``nxdomain``; ``servfail``; ``refused`` (the REFUSED response code); ``wrong_answer`` (an A or AAAA target
gets a documentation address, 192.0.2.66 or 2001:db8::66, as from a hijacked zone); ``dnssec_bogus``
(SERVFAIL with the Extended DNS Error «DNSSEC Bogus», as a validating resolver answers a forged record);
``dnssec_insecure`` (the answer without the AD flag).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass, field
from typing import Any

import dns.asyncbackend
import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase, close_listeners

log = logging.getLogger(__name__)

STATES = ("up", "down", "nxdomain", "servfail", "refused", "wrong_answer", "dnssec_bogus", "dnssec_insecure")
TTL = 300
WRONG = {"A": "192.0.2.66", "AAAA": "2001:db8::66"}
PORT_TRIES = 20  # ephemeral UDP ports tried before one whose TCP twin is free too


@dataclass
class _Entry:
    """What the server answers for one (name, type)."""

    name: dns.name.Name
    rdtype: str
    records: list[str]
    dnssec: bool
    state: str = "up"


@dataclass
class _Server:
    host: str
    port: int = 0
    entries: dict[tuple[dns.name.Name, str], _Entry] = field(default_factory=dict)
    udp: asyncio.DatagramTransport | None = None
    tcp: asyncio.Server | None = None
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    answered: int = 0

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to a query, or None to stay silent."""
        response = dns.message.make_response(query, recursion_available=True)
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        rdtype = dns.rdatatype.to_text(question.rdtype)
        entry = self.entries.get((question.name, rdtype))
        if entry is None:
            known = any(name == question.name for name, _ in self.entries)
            response.set_rcode(dns.rcode.NOERROR if known else dns.rcode.NXDOMAIN)
            return response
        if entry.state == "down":
            return None
        rcode = {"nxdomain": dns.rcode.NXDOMAIN, "servfail": dns.rcode.SERVFAIL, "refused": dns.rcode.REFUSED,
                 "dnssec_bogus": dns.rcode.SERVFAIL}.get(entry.state, dns.rcode.NOERROR)
        response.set_rcode(rcode)
        if entry.state == "dnssec_bogus" and query.edns >= 0:
            response.use_edns(0, 0, query.payload, options=[dns.edns.EDEOption(dns.edns.EDECode.DNSSEC_BOGUS)])
        if rcode != dns.rcode.NOERROR:
            return response
        records = [WRONG[entry.rdtype]] if entry.state == "wrong_answer" else entry.records
        if records:
            response.answer.append(dns.rrset.from_text_list(question.name, TTL, dns.rdataclass.IN, rdtype, records))
        if entry.dnssec and entry.state != "dnssec_insecure":
            response.flags |= dns.flags.AD
        return response


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # a datagram endpoint's, not a subclass in 3.11

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # not DNS: ignored, as a resolver does
        response = self.server.answer(query)
        if response is None or self.transport is None:
            return
        limit = query.payload if query.edns >= 0 else 512
        try:
            wire = response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC  # the client asks again over TCP
            wire = response.to_wire()
        self.server.answered += 1
        self.transport.sendto(wire, addr)


class _Stream(dns.asyncbackend.StreamSocket):
    """An asyncio connection as dnspython's stream socket, so its TCP framing reads and writes the messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(0, 0)
        self.reader = reader
        self.writer = writer

    async def sendall(self, what: bytes, timeout: float | None) -> None:
        self.writer.write(what)
        await self.writer.drain()

    async def recv(self, size: int, timeout: float | None) -> bytes:
        return await self.reader.read(size)


class DnsSimulator(SimulatorBase):
    kind = "dns"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None) -> None:
        super().__init__(pool, seed, peers)
        self.servers: dict[str, _Server] = {}
        self.targets: dict[str, _Entry] = {}

    # -- the simulator interface of the lab -----------------------------------------------------

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        key = str(params.get("server", target_id))
        server = self.servers.get(key)
        if server is None:
            server = self.servers[key] = _Server(self.pool.take(key))
            await self._open(server)
        name = dns.name.from_text(str(params["name"]))
        rdtype = str(params.get("type", "A")).upper()
        entry = server.entries.get((name, rdtype))
        if entry is None:
            entry = _Entry(name, rdtype, self._records(name, rdtype, params), params.get("dnssec", "off") != "off")
            server.entries[(name, rdtype)] = entry
        self.targets[target_id] = entry
        if not up:
            await self.set_state(target_id, "down")
        return {**params, "server": server.host, "port": server.port}

    async def set_state(self, target_id: str, state: str) -> None:
        entry = self.targets[target_id]
        if state not in STATES:
            raise ValueError(f"dns targets can be {', '.join(STATES)}, not {state!r}")
        if state == "wrong_answer" and entry.rdtype not in WRONG:
            raise ValueError(f"wrong_answer is for A and AAAA targets; {target_id} asks {entry.rdtype}")
        entry.state = state

    def states(self) -> dict[str, str]:
        return {t: e.state for t, e in self.targets.items()}

    async def close(self) -> None:
        for server in self.servers.values():
            await close_listeners(server.udp, server.tcp, server.connections)
            server.udp = server.tcp = None

    # -- records and sockets ----------------------------------------------------------------------

    def _records(self, name: dns.name.Name, rdtype: str, params: dict[str, Any]) -> list[str]:
        """The records of a name the target will accept, made up for the lab."""
        if rdtype in ("A", "AAAA") and params.get("addresses"):
            return [str(a) for a in params["addresses"]]
        host = name.to_text(omit_final_dot=True)
        parent = name.parent().to_text() if len(name.labels) > 2 else "lab.invalid."
        made = {
            "A": self.pool.take(host.lower()), "AAAA": "::1", "CNAME": parent, "MX": f"10 mail.{name}",
            "NS": f"ns1.{name}", "TXT": '"v=spf1 -all"', "SOA": f"ns1.{name} hostmaster.{name} 1 3600 600 86400 300",
            "SRV": f"0 0 443 {name}", "CAA": '0 issue "lab.invalid"', "PTR": f"{name}",
        }.get(rdtype)
        return [made] if made else []

    async def _open(self, server: _Server) -> None:
        """UDP and TCP on one ephemeral port (a DNS client falls back to TCP on the same one)."""
        loop = asyncio.get_running_loop()
        for _ in range(PORT_TRIES):
            udp, _protocol = await loop.create_datagram_endpoint(lambda: _Udp(server), local_addr=(server.host, 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                server.tcp = await asyncio.start_server(lambda r, w: self._serve(server, r, w), server.host, port)
            except OSError as exc:
                udp.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            server.udp, server.port = udp, port
            return
        raise RuntimeError(f"no port free for both UDP and TCP on {server.host} after {PORT_TRIES} tries")

    async def _serve(self, server: _Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections.add(writer)
        stream = _Stream(reader, writer)
        try:
            while True:
                query, _ = await dns.asyncquery.receive_tcp(stream)
                response = server.answer(query)
                if response is None:
                    continue
                server.answered += 1
                await dns.asyncquery.send_tcp(stream, response)
        except (EOFError, ConnectionError, dns.exception.DNSException):
            pass
        except Exception:  # a bad client must not take the server down
            log.debug("lab dns %s: connection failed", server.host, exc_info=True)
        finally:
            server.connections.discard(writer)
            writer.close()
