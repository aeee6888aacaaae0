"""DNSSEC through a real validating resolver: nsd serves a zone signed in the test by ldns-signzone, one of
its records changed after signing; unbound validates it against the zone's key as trust anchor. The dns
collector reads the AD flag, tells a bogus answer from a broken zone (by the resolver's Extended DNS Error,
or without one by asking again with checking disabled), and an unsigned name from a validated one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dns_servers import (
    AUTHORITATIVE,
    RESOLVER,
    free_port,
    need,
    nsd_config,
    running,
    signed_zone,
    unbound_config,
)

from collectors.api import ProbeResult
from collectors.dns.models import DnsParams, DnsSettings
from collectors.dns.probe import DnsCollector

ZONE = "secure.test"
RECORDS = [f"{ZONE}. 300 IN A 127.0.25.20", f"www.{ZONE}. 300 IN A 127.0.25.21",
           f"alias.{ZONE}. 300 IN CNAME www.{ZONE}.", f"forged.{ZONE}. 300 IN A 127.0.25.22"]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, Path]]:
    """nsd serving the signed zone: (folder, its port, the trust anchor)."""
    need("nsd", "nsd-checkconf", "ldns-keygen", "ldns-signzone")
    folder = tmp_path_factory.mktemp("nsd")
    zonefile, anchor = signed_zone(folder, ZONE, RECORDS, {f"forged.{ZONE}": "127.0.25.22>127.0.25.66"})
    port = free_port(AUTHORITATIVE)
    config = nsd_config(folder, port, ZONE, zonefile)
    with running(["nsd", "-d", "-c", str(config)], folder / "nsd.out", AUTHORITATIVE, port, ZONE):
        yield folder, port, anchor


def validating(folder: Path, nsd_port: int, anchor: Path, ede: bool) -> tuple[list[str], str]:
    server = ["module-config: \"validator iterator\"", "do-not-query-localhost: no", f'trust-anchor-file: "{anchor}"',
              "val-log-level: 2", f"ede: {'yes' if ede else 'no'}", f'local-zone: "{ZONE}." transparent',
              'local-zone: "bacgiang.gov.vn." static', 'local-data: "bacgiang.gov.vn. 300 IN A 127.0.25.10"']
    return server, f'stub-zone:\n    name: "{ZONE}."\n    stub-addr: {AUTHORITATIVE}@{nsd_port}\n'


@pytest.fixture(scope="module", params=[True, False], ids=["ede", "no-ede"])
def resolver(request: pytest.FixtureRequest, signed: tuple[Path, int, Path],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A validating unbound in front of nsd; without Extended DNS Errors too (a resolver older than RFC 8914)."""
    need("unbound", "unbound-checkconf")
    _nsd_folder, nsd_port, anchor = signed
    folder = tmp_path_factory.mktemp("unbound-validating")
    port = free_port(RESOLVER)
    lines, tail = validating(folder, nsd_port, anchor, request.param)
    config = unbound_config(folder, port, lines, tail)
    with running(["unbound", "-d", "-c", str(config)], folder / "unbound.log", RESOLVER, port, "bacgiang.gov.vn"):
        yield port


def probe(port: int, params: dict[str, Any]) -> ProbeResult:
    async def run() -> ProbeResult:
        collector = DnsCollector(DnsSettings.model_validate({}))
        return await collector.probe("t", DnsParams.model_validate({"server": RESOLVER, "port": port, **params}), 3.0)

    return asyncio.run(run())


CASES: list[tuple[dict[str, Any], str, float | None]] = [
    ({"name": ZONE, "dnssec": "validated", "addresses": ["127.0.25.20"]}, "", 1),
    ({"name": f"alias.{ZONE}", "dnssec": "validated", "addresses": ["127.0.25.21"]}, "", 1),  # CNAME followed
    ({"name": f"forged.{ZONE}", "dnssec": "validated"}, "dnssec_bogus", 0),
    ({"name": f"forged.{ZONE}", "dnssec": "report"}, "dnssec_bogus", 0),  # a bogus name is down in any mode
    ({"name": f"forged.{ZONE}"}, "servfail", None),  # not asked: the resolver's SERVFAIL, as a citizen sees it
    ({"name": "bacgiang.gov.vn", "dnssec": "validated"}, "dnssec_insecure", 0),  # unsigned
    ({"name": "bacgiang.gov.vn", "dnssec": "report"}, "", 0),  # reported, not required
    ({"name": f"nothing.{ZONE}", "dnssec": "validated"}, "nxdomain", 1),  # a validated denial is still a name down
]


@pytest.mark.parametrize(("params", "reason", "validated"), CASES,
                         ids=[f"{p['name']}-{p.get('dnssec', 'off')}" for p, _, _ in CASES])
def test_dnssec_status(resolver: int, params: dict[str, Any], reason: str, validated: float | None) -> None:
    result = probe(resolver, params)
    assert (result.up, result.reason) == (not reason, reason), result.detail
    assert {s.family: s.value for s in result.samples}.get("dns_dnssec_validated") == validated
