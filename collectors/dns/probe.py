"""DNS checks of the province's names: a portal whose name does not resolve is down for every citizen.

One question (name, type) to one configured server, the way a citizen's resolver or the province's own
resolver would ask it, then the answer judged: the response code, the records of the asked type (CNAMEs
followed within the answer), the expected addresses or a regex, and, where asked, whether the resolver
validated the answer with DNSSEC (its AD flag).

dnspython builds, sends and parses the messages (its asyncio API, so a probe never blocks the loop). Over
UDP the same query is sent again on one connected socket every ``retransmit_after`` until the timeout:
a datagram lost on a commune's link is not a name down, a late answer to the first copy still counts, and
a closed port (ICMP port unreachable) is ``refused`` at once, as in the tcp and sip kinds. A truncated
UDP answer is asked again over TCP.

Reasons: ``timeout`` (no answer within the timeout, as in every kind), ``refused`` (the server's port
refused: ICMP port unreachable or TCP RST), ``unreachable``, ``network_error``, ``server_unresolved`` (a
server given by host name that does not resolve), ``nxdomain``, ``servfail``, ``query_refused`` (the
server answered REFUSED: its access list or a zone it does not serve), another response code by its
lower-case name (``formerr``, ``notimp``), ``no_answer`` (the name exists, without records of the type),
``wrong_answer`` (not the expected addresses, or no record matching the regex), ``dnssec_bogus`` (the
resolver failed to validate: its SERVFAIL carries a DNSSEC Extended DNS Error, or the same query with
checking disabled (CD) is answered), ``dnssec_insecure`` (``dnssec: validated`` and no AD flag),
``bad_response`` (an answer over TCP that is not a DNS response to the query).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
import time

import dns.asyncbackend
import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rdtypes.txtbase

from collectors.api import Collector, Family, ProbeFailure, ProbeResult, Sample
from collectors.dns.models import DnsParams, DnsSettings

# Extended DNS Errors (RFC 8914) a validating resolver attaches to the SERVFAIL of a bogus answer.
DNSSEC_EDE = frozenset({
    dns.edns.EDECode.DNSSEC_BOGUS, dns.edns.EDECode.SIGNATURE_EXPIRED, dns.edns.EDECode.SIGNATURE_NOT_YET_VALID,
    dns.edns.EDECode.DNSKEY_MISSING, dns.edns.EDECode.RRSIGS_MISSING, dns.edns.EDECode.NSEC_MISSING,
    dns.edns.EDECode.UNSUPPORTED_DNSKEY_ALGORITHM, dns.edns.EDECode.UNSUPPORTED_DS_DIGEST_TYPE,
})
RCODE_REASONS = {dns.rcode.NXDOMAIN: "nxdomain", dns.rcode.SERVFAIL: "servfail", dns.rcode.REFUSED: "query_refused"}
MARGIN = 0.05  # seconds: answer before the scheduler gives up on the probe


class DnsCollector(Collector[DnsParams, DnsSettings]):
    kind = "dns"
    Params = DnsParams
    Settings = DnsSettings
    families = (
        Family("dns_lookup_seconds", "gauge", "From the first query sent to the answer, retransmissions and a TCP "
                                              "retry included."),
        Family("dns_rcode", "gauge", "Response code of the answer (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED)."),
        Family("dns_answer_records", "gauge", "Records of the asked type in the answer, CNAMEs followed."),
        Family("dns_answer_ttl_seconds", "gauge", "Smallest TTL along the answer's chain: how long resolvers "
                                                  "keep it."),
        Family("dns_answer_ok", "gauge", "1 if the answer holds records of the asked type matching the "
                                         "expected addresses and regex."),
        Family("dns_dnssec_validated", "gauge", "1 if the resolver validated the answer with DNSSEC (AD flag); "
                                                "only where the target asks for dnssec."),
        Family("dns_retransmits", "gauge", "Times the query was sent again over UDP before an answer came."),
    )

    async def probe(self, target_id: str, params: DnsParams, timeout: float) -> ProbeResult:
        started = time.monotonic()
        deadline = started + max(MARGIN, timeout - MARGIN)
        query = _query(params, self.settings)
        exchange = _Exchange(params, self.settings, deadline)
        try:
            response = await exchange.ask(query)
        except ProbeFailure as failure:
            return ProbeResult(False, failure.reason, [Sample("dns_retransmits", exchange.retransmits)],
                               failure.detail)
        samples = [Sample("dns_lookup_seconds", time.monotonic() - started),
                   Sample("dns_rcode", float(response.rcode())),
                   Sample("dns_retransmits", exchange.retransmits)]
        if params.dnssec != "off":
            samples.append(Sample("dns_dnssec_validated", float(bool(response.flags & dns.flags.AD))))
        reason, detail = await _judge(response, query, params, exchange, samples)
        return ProbeResult(not reason, reason, samples, detail)


def _query(params: DnsParams, settings: DnsSettings) -> dns.message.QueryMessage:
    query = dns.message.make_query(params.name, params.type, use_edns=0, payload=settings.edns_payload,
                                   want_dnssec=params.dnssec != "off")
    if not params.recursion:
        query.flags &= ~dns.flags.RD
    if params.dnssec != "off":
        query.flags |= dns.flags.AD  # RFC 6840 §5.7: tells the resolver we read the AD bit
    return query


async def _judge(response: dns.message.Message, query: dns.message.QueryMessage, params: DnsParams,
                 exchange: _Exchange, samples: list[Sample]) -> tuple[str, str]:
    """The reason the answer fails the target ("" if it passes) and a detail for the log."""
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        text = dns.rcode.to_text(rcode)
        if rcode == dns.rcode.SERVFAIL and params.dnssec != "off" and await _bogus(response, query, exchange):
            return "dnssec_bogus", f"{params.name} {params.type}: the resolver's DNSSEC validation failed"
        return RCODE_REASONS.get(rcode, text.lower()), f"{params.name} {params.type}: {text}"
    if not isinstance(response, dns.message.QueryMessage):
        return "bad_response", f"{params.name} {params.type}: not an answer to a query"
    try:
        chain = response.resolve_chaining()
    except dns.exception.DNSException as exc:
        return "bad_response", f"{params.name} {params.type}: {exc}"
    records = list(chain.answer) if chain.answer is not None else []
    samples.append(Sample("dns_answer_records", float(len(records))))
    if records:
        samples.append(Sample("dns_answer_ttl_seconds", float(chain.minimum_ttl)))
    wrong = _mismatch(records, params)
    samples.append(Sample("dns_answer_ok", float(bool(records) and not wrong)))
    if not records:
        return "no_answer", f"{params.name} exists but has no {params.type} record"
    if wrong:
        return "wrong_answer", f"{params.name} {params.type}: {wrong}"
    if params.dnssec == "validated" and not response.flags & dns.flags.AD:
        return "dnssec_insecure", f"{params.name} {params.type}: the answer is not DNSSEC-validated (no AD flag)"
    return "", ""


def _mismatch(records: list[dns.rdata.Rdata], params: DnsParams) -> str:
    """What is wrong with the answer's records, or "" when they are as expected."""
    if params.addresses:
        got = {ipaddress.ip_address(r.to_text()) for r in records}
        if got != set(params.addresses):
            return f"answered {', '.join(sorted(map(str, got)))}, expected {', '.join(map(str, params.addresses))}"
    if params.regex is not None and records and not any(re.search(params.regex, _text(r)) for r in records):
        return f"no record matches {params.regex!r}"
    return ""


def _text(record: dns.rdata.Rdata) -> str:
    """What a regex reads: a TXT record's strings joined, as SPF and DMARC read them; else the presentation form."""
    if isinstance(record, dns.rdtypes.txtbase.TXTBase):
        return b"".join(record.strings).decode("utf-8", "replace")
    return record.to_text()


async def _bogus(response: dns.message.Message, query: dns.message.QueryMessage, exchange: _Exchange) -> bool:
    """Whether a SERVFAIL is the resolver refusing an answer that failed validation, not a broken zone."""
    if any(isinstance(o, dns.edns.EDEOption) and o.code in DNSSEC_EDE for o in response.options):
        return True
    unchecked = dns.message.make_query(query.question[0].name, query.question[0].rdtype, use_edns=0,
                                       payload=query.payload, want_dnssec=True)
    unchecked.flags = query.flags | dns.flags.CD
    try:
        retry = await exchange.ask(unchecked)
    except ProbeFailure:
        return False
    return retry.rcode() == dns.rcode.NOERROR


class _Exchange:
    """Queries to one server until a deadline, counting the UDP retransmissions."""

    def __init__(self, params: DnsParams, settings: DnsSettings, deadline: float) -> None:
        self.params = params
        self.settings = settings
        self.deadline = deadline
        self.retransmits = 0.0
        self._address: str | None = None

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ProbeFailure("timeout", f"no answer from {self.params.server} within the timeout")
        return left

    async def ask(self, query: dns.message.QueryMessage) -> dns.message.Message:
        address = await self._server()
        try:
            if self.params.transport == "udp":
                try:
                    return await self._udp(query, address)
                except dns.message.Truncated:
                    pass  # the answer does not fit a datagram: ask again over TCP
            return await dns.asyncquery.tcp(query, address, self._left(), self.params.port)
        except dns.exception.Timeout:
            raise ProbeFailure("timeout", f"no answer from {self.params.server} within the timeout") from None
        except OSError as exc:
            raise ProbeFailure(_os_reason(exc), exc.strerror or str(exc)) from None
        except (EOFError, dns.exception.DNSException) as exc:
            raise ProbeFailure("bad_response", f"{self.params.server}: {type(exc).__name__}: {exc}") from None

    async def _udp(self, query: dns.message.QueryMessage, address: str) -> dns.message.Message:
        backend = dns.asyncbackend.get_default_backend()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        # Connected, so that the kernel reports an ICMP port unreachable (and drops others' datagrams).
        sock = await backend.make_socket(family, socket.SOCK_DGRAM, 0, None, (address, self.params.port))
        async with sock:
            while True:
                step = min(self._left(), self.settings.retransmit_after)
                try:
                    return await dns.asyncquery.udp(query, address, step, self.params.port, sock=sock,
                                                    ignore_unexpected=True, ignore_errors=True,
                                                    raise_on_truncation=True)
                except dns.exception.Timeout:
                    if self.deadline - time.monotonic() <= 0:
                        raise
                    self.retransmits += 1

    async def _server(self) -> str:
        """The server's address; a host name is resolved by the system (the agent's own resolver)."""
        if self._address is None:
            host = str(self.params.server)
            try:
                ipaddress.ip_address(host)
                self._address = host
            except ValueError:
                self._address = await self._resolve(host)
        return self._address

    async def _resolve(self, host: str) -> str:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, self.params.port, type=socket.SOCK_DGRAM),
                                           self._left())
        except TimeoutError:
            raise ProbeFailure("timeout", f"resolving the server {host} took the whole timeout") from None
        except OSError as exc:
            raise ProbeFailure("server_unresolved", f"the server {host}: {exc}") from None
        return str(infos[0][4][0])


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return "network_error"
