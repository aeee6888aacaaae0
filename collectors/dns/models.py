"""The dns collector's configuration models, apart from dnspython.

``check-config`` validates a name's params with these alone; dnspython loads only when an agent probes
(collectors/dns/probe.py). So names, record types and expected addresses are checked here by hand, in
the few rules a configuration needs, not by dnspython's parser.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from agent.domain.models import Duration, Regex, StrictModel
from agent.domain.netaddr import ProbeHost

# The types a province asks its DNS about: the portals' addresses, aliases, mail, delegation, SPF/DMARC text.
RecordType = Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "CAA", "PTR", "DS", "DNSKEY"]
ADDRESS_TYPES = ("A", "AAAA")

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _check_name(value: str) -> str:
    """A fully qualified name, stored in IDNA form without the final dot (``bacgiang.gov.vn``)."""
    text = value.strip().rstrip(".")
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        raise ValueError(f"invalid international domain name {value!r}") from None
    labels = ascii_name.split(".")
    if not text or len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"expected a domain name such as bacgiang.gov.vn, got {value!r}")
    return ascii_name.lower()


DomainName = Annotated[str, AfterValidator(_check_name)]


class DnsParams(StrictModel):
    """One question to one server, and what its answer must be."""

    server: ProbeHost = Field(description="The DNS server asked: the province's resolver or the zone's authoritative")
    port: int = Field(53, ge=1, le=65535)
    name: DomainName
    type: RecordType = "A"
    transport: Literal["udp", "tcp"] = Field("udp", description="udp falls back to tcp on a truncated answer")
    recursion: bool = Field(True, description="Ask for recursion (RD): false to ask an authoritative server")
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = Field(
        default_factory=list, description="A/AAAA only: the answer must be exactly these addresses, in any order")
    regex: Regex | None = Field(None, description="At least one record of the answer, as text, must match")
    dnssec: Literal["off", "report", "validated"] = Field(
        "off", description="report: export whether the resolver validated the answer (AD); validated: down unless "
                           "it did. A bogus answer is down with either")

    @model_validator(mode="after")
    def _consistent(self) -> DnsParams:
        if self.addresses and self.type not in ADDRESS_TYPES:
            raise ValueError(f"addresses are for A and AAAA questions; check the {self.type} answer with regex")
        version = 4 if self.type == "A" else 6
        wrong = [str(a) for a in self.addresses if a.version != version]
        if wrong:
            raise ValueError(f"a {self.type} answer holds IPv{version} addresses, not {', '.join(wrong)}")
        return self


class DnsSettings(StrictModel):
    retransmit_after: Duration = Field(1.0, gt=0, le=60, description="Without an answer over UDP for this long, the "
                                                                     "query is sent again (a datagram lost on the "
                                                                     "WAN is not a name down)")
    edns_payload: int = Field(1232, ge=512, le=4096, description="EDNS UDP payload size offered (DNS flag day "
                                                                 "2020: no IP fragmentation)")
