"""The two facts an HTTPS probe reads from a portal's leaf certificate: when it expires, and whether it names the host.

Why pyasn1-modules: its RFC 5280 structures decode a certificate with pyasn1, which the agent already
holds for SNMP, for about 1 MiB more; cryptography with service_identity cost the long-running agent
8.9 MiB of RSS for these two facts. OpenSSL (inside libcurl) has verified the chain and the name
before any request is sent; what is read here is only reported, never trusted.

The name check follows RFC 6125 as service_identity applies it (tests/test_http_certs.py compares
the two on generated certificates): only the subjectAltName counts (no commonName fallback); a DNS
pattern matches case-insensitively, with one ``*`` as the whole left-most label of a name of three
labels or more, never over an IDNA (``xn--``) label; a host given as an IP address matches an
iPAddress entry only; a DNS entry that is not a valid pattern (an IP address, a misplaced or second
wildcard, an empty label) makes the whole check fail.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass

from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc5280

_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_HOST_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_.")


class BadPattern(ValueError):
    """A subjectAltName DNS entry that no host can match by the rules: the check fails."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """What the probe keeps of a certificate."""

    not_after: float  # seconds since the epoch
    dns_names: tuple[bytes, ...]  # subjectAltName dNSName entries, as sent
    ip_addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]


def read_pem(pem: str | bytes) -> Leaf | None:
    """The first certificate of a PEM text, or None when there is none or it does not decode."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    start = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", start)
    if start < 0 or end < 0:
        return None
    try:
        der = ssl.PEM_cert_to_DER_cert(text[start:end + len("-----END CERTIFICATE-----")])
    except ValueError:
        return None
    return read_der(der)


def read_der(der: bytes) -> Leaf | None:
    try:
        cert, rest = decoder.decode(der, asn1Spec=rfc5280.Certificate())
        if rest:
            return None
        tbs = cert["tbsCertificate"]
        not_after = _seconds(tbs["validity"]["notAfter"])
        dns: list[bytes] = []
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        if tbs["extensions"].isValue:
            for extension in tbs["extensions"]:
                if extension["extnID"] != rfc5280.id_ce_subjectAltName:
                    continue
                names, rest = decoder.decode(bytes(extension["extnValue"]), asn1Spec=rfc5280.SubjectAltName())
                if rest:
                    return None
                for name in names:
                    kind = name.getName()
                    if kind == "dNSName":
                        dns.append(bytes(name.getComponent()))
                    elif kind == "iPAddress":
                        ips.append(ipaddress.ip_address(bytes(name.getComponent())))
    except (PyAsn1Error, ValueError, TypeError):  # not DER, not a certificate, an address of 5 bytes
        return None
    return Leaf(not_after, tuple(dns), tuple(ips))


def _seconds(time: rfc5280.Time) -> float:
    """notAfter as epoch seconds; UTCTime's two-digit years as RFC 5280 reads them (50-99: 19xx)."""
    text = str(time.getComponent())
    if time.getName() == "utcTime":
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    stamp = dt.datetime.strptime(text, "%Y%m%d%H%M%SZ")  # RFC 5280: seconds, Z, no fraction
    return stamp.replace(tzinfo=dt.UTC).timestamp()


def names_host(leaf: Leaf, host: str) -> bool:
    """Whether the certificate names ``host`` (a DNS name or an IP address), by the rules above."""
    try:
        patterns = [_dns_pattern(name) for name in leaf.dns_names]
    except BadPattern:
        return False
    if not patterns and not leaf.ip_addresses:
        return False  # no subjectAltName at all
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        wanted = _dns_id(host)
        return wanted is not None and any(_matches(pattern, wanted) for pattern in patterns)
    return ip in leaf.ip_addresses


def _looks_like_ip(text: bytes) -> bool:
    """What could be, or match, an IP address: a plain number too (``int`` reads ``10``, `` +7 ``, ``1_0``)."""
    try:
        value = text.decode("ascii")
    except UnicodeError:
        return False
    try:
        int(value)
    except ValueError:
        pass
    else:
        return True
    try:
        ipaddress.ip_address(value.replace("*", "1"))
    except ValueError:
        return False
    return True


def _dns_pattern(name: bytes) -> bytes:
    pattern = name.strip()
    if not pattern or b"\0" in pattern or _looks_like_ip(pattern):
        raise BadPattern(name)
    pattern = pattern.translate(_LOWER)
    if b"*" in pattern:
        labels = pattern.split(b".")
        if pattern.count(b"*") > 1 or len(labels) < 3 or b"*" not in labels[0] or not all(labels):
            raise BadPattern(name)
    return pattern


def _dns_id(host: str) -> bytes | None:
    """The host as the ASCII, lower-case name a pattern is compared with; None if it is not a host name."""
    host = host.strip()
    if not host or _looks_like_ip(host.encode("utf-8")):
        return None
    try:
        if host.isascii():
            wanted = host.encode("ascii")
        else:
            import idna  # IDNA 2008, as service_identity encodes; only for a host name that is not ASCII

            wanted = idna.encode(host)
    except UnicodeError:  # idna.IDNAError is one
        return None
    wanted = wanted.translate(_LOWER)
    return wanted if set(wanted) <= _HOST_CHARS else None


def _matches(pattern: bytes, host: bytes) -> bool:
    if b"*" not in pattern:
        return pattern == host
    if b"." not in host:
        return False
    head, tail = pattern.split(b".", 1)
    host_head, host_tail = host.split(b".", 1)
    if tail != host_tail or host_head.startswith(b"xn--"):
        return False
    return head in (b"*", host_head)
