"""collectors.http.certs against the libraries it replaced in the agent: cryptography reads the same expiry
and names, and service_identity gives the same name verdict, on generated certificates and mutated ones."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import verify_certificate_hostname, verify_certificate_ip_address

from collectors.http import certs

KEY = ec.generate_private_key(ec.SECP256R1())
UTC = dt.UTC


def make(dns: list[str] = (), ips: list[str] = (), not_after: dt.datetime | None = None,
         san: bool = True) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal.bacgiang.gov.vn")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(KEY.public_key())
               .serial_number(7).not_valid_before(dt.datetime(1950, 1, 1, tzinfo=UTC))
               .not_valid_after(not_after or dt.datetime(2031, 6, 30, 12, 0, 1, tzinfo=UTC)))
    if san:
        names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        # cryptography 51 refuses to build an empty subjectAltName, so that one is written as its DER (30 00)
        san_ext = (x509.SubjectAlternativeName(names) if names
                   else x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x00"))
        builder = builder.add_extension(san_ext, critical=False)
    return builder.sign(KEY, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def service_identity_says(cert: x509.Certificate, host: str) -> bool:
    """What the agent's probe reported before: service_identity's verdict, any refusal as False."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        check = verify_certificate_hostname
    else:
        check = verify_certificate_ip_address
    try:
        check(cert, host)
    except (VerificationError, CertificateError, ValueError):
        return False
    return True


@pytest.mark.parametrize("when", [
    dt.datetime(2031, 6, 30, 12, 0, 1, tzinfo=UTC),   # UTCTime
    dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC),  # the last UTCTime year
    dt.datetime(2050, 1, 1, tzinfo=UTC),               # GeneralizedTime from 2050 on
    dt.datetime(1999, 3, 4, 5, 6, 7, tzinfo=UTC),      # UTCTime "99": 1999, not 2099
    dt.datetime(1955, 3, 4, tzinfo=UTC),               # UTCTime "55": 1955 (strptime %y would say 2055)
    dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
])
def test_the_expiry_is_cryptographys(when: dt.datetime) -> None:
    cert = make(["portal.bacgiang.gov.vn"], not_after=when)
    leaf = certs.read_pem(pem(cert))
    assert leaf is not None
    assert leaf.not_after == cert.not_valid_after_utc.timestamp() == when.timestamp()


SANS = [
    (["portal.bacgiang.gov.vn"], []),
    (["PORTAL.BacGiang.gov.VN"], []),
    (["*.bacgiang.gov.vn"], []),
    (["*.gov.vn"], []),
    (["*.vn"], []),                      # too few labels for a wildcard: the check fails
    (["f*.bacgiang.gov.vn"], []),        # a partial wildcard only matches itself
    (["portal.*.gov.vn"], []),           # not in the left-most label
    (["*.*.gov.vn"], []),                # two wildcards
    (["*..gov.vn"], []),                 # an empty label
    (["10.0.0.1", "portal.bacgiang.gov.vn"], []),  # an IP address as a DNS name: the check fails
    (["7", "portal.bacgiang.gov.vn"], []),
    (["*.xn--bc-giang-4za.vn"], []),
    (["xn--bc-giang-4za.vn"], []),
    ([" portal.bacgiang.gov.vn "], []),
    (["dvc.bacgiang.gov.vn", "portal.bacgiang.gov.vn"], ["127.0.0.1"]),
    ([], ["127.0.0.1", "::1"]),
    ([], ["10.0.0.1"]),
    ([], []),                            # an empty subjectAltName
]
HOSTS = ["portal.bacgiang.gov.vn", "Portal.BACGIANG.gov.vn", "dvc.bacgiang.gov.vn", "a.b.bacgiang.gov.vn",
         "bacgiang.gov.vn", "gov.vn", "fx.bacgiang.gov.vn", "f*.bacgiang.gov.vn", "xn--abc.bacgiang.gov.vn",
         "bắc-giang.vn", "x.bắc-giang.vn", "xn--bc-giang-4za.vn", "127.0.0.1", "::1", "0:0::1", "10.0.0.1",
         "127.0.0.2", "7", "portal", "", "portal.bacgiang.gov.vn.", "por tal.bacgiang.gov.vn"]


@pytest.mark.parametrize(("dns", "ips"), SANS)
def test_the_name_verdict_is_service_identitys(dns: list[str], ips: list[str]) -> None:
    cert = make(dns, ips)
    leaf = certs.read_pem(pem(cert))
    assert leaf is not None
    for host in HOSTS:
        assert certs.names_host(leaf, host) == service_identity_says(cert, host), (dns, ips, host)


def test_no_subject_alt_name_names_no_host() -> None:
    """No commonName fallback: a certificate naming the host only in its subject names nothing."""
    cert = make(san=False)
    leaf = certs.read_pem(pem(cert))
    assert leaf is not None and leaf.dns_names == () and leaf.ip_addresses == ()
    assert certs.names_host(leaf, "portal.bacgiang.gov.vn") is service_identity_says(cert, "portal.bacgiang.gov.vn")
    assert certs.names_host(leaf, "portal.bacgiang.gov.vn") is False


def test_mutated_certificates_decode_the_same_or_not_at_all() -> None:
    """Bytes of a real certificate flipped, cut and repeated: read_der answers a Leaf or None, never raises,
    and whenever cryptography also reads the expiry and names, they are the same."""
    base = make(["portal.bacgiang.gov.vn", "*.bacgiang.gov.vn"], ["127.0.0.1"]).public_bytes(serialization.Encoding.DER)
    rng = random.Random(15)
    agreed = refused = 0
    for _ in range(400):
        der = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            how = rng.random()
            at = rng.randrange(len(der))
            if how < 0.6:
                der[at] = rng.randrange(256)
            elif how < 0.8:
                del der[at:at + rng.randint(1, 8)]
            else:
                der[at:at] = der[at:at + rng.randint(1, 8)]
        leaf = certs.read_der(bytes(der))
        try:
            theirs = x509.load_der_x509_certificate(bytes(der))
            expiry = theirs.not_valid_after_utc.timestamp()
            try:
                san = theirs.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                names = (tuple(n.encode() for n in san.get_values_for_type(x509.DNSName)),
                         tuple(san.get_values_for_type(x509.IPAddress)))
            except x509.ExtensionNotFound:
                names = ((), ())
        except ValueError:
            refused += leaf is None
            continue
        if leaf is not None:
            assert (leaf.not_after, (leaf.dns_names, leaf.ip_addresses)) == (expiry, names)
            agreed += 1
    assert agreed > 20 and refused > 100  # both kinds of case were met


@pytest.mark.parametrize("text", [b"", b"not a certificate",
                                  b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----",
                                  b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"])
def test_what_is_not_a_certificate_is_none(text: bytes) -> None:
    assert certs.read_pem(text) is None
