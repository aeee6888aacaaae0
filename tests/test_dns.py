"""The dns collector against a real resolver: Debian's unbound, started by the test on 127.0.25.201 with the
province's names as local data, and zones that answer REFUSED, SERVFAIL or nothing at all."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from support.dns_servers import NOBODY, RESOLVER, free_port, need, running, unbound_config

from collectors import REGISTRY
from collectors.api import ProbeResult
from collectors.dns.models import DnsParams, DnsSettings
from collectors.dns.probe import DnsCollector

REPO = Path(__file__).resolve().parent.parent
BIG_TXT = 40  # TXT records of 60 characters: about 2.6 kB, more than a 1232-byte UDP answer holds

LOCAL = [
    'local-zone: "bacgiang.gov.vn." static',
    'local-data: "bacgiang.gov.vn. 300 IN SOA ns1.bacgiang.gov.vn. hostmaster.bacgiang.gov.vn. 1 3600 600 86400 300"',
    'local-data: "bacgiang.gov.vn. 300 IN A 127.0.25.10"',
    'local-data: "bacgiang.gov.vn. 300 IN MX 10 mail.bacgiang.gov.vn."',
    'local-data: \'bacgiang.gov.vn. 300 IN TXT "v=spf1 mx -all"\'',  # single quotes outside the TXT's own
    'local-data: "dichvucong.bacgiang.gov.vn. 120 IN A 127.0.25.11"',
    'local-data: "dichvucong.bacgiang.gov.vn. 120 IN A 127.0.25.12"',
    *(f"local-data: 'big.bacgiang.gov.vn. 300 IN TXT \"{i:02d}{'x' * 58}\"'" for i in range(BIG_TXT)),
    'local-zone: "refused.test." refuse',  # answers REFUSED
    'local-zone: "silent.test." deny',  # drops the query: no answer at all
    'local-zone: "broken.test." transparent',  # not unbound's default NXDOMAIN for test. (RFC 6761)
    # A delegation to a server unbound may not ask (do-not-query-localhost): no usable server, SERVFAIL.
    "stub-zone:", '    name: "broken.test."', f"    stub-addr: {NOBODY}@53",
]


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    need("unbound", "unbound-checkconf")
    folder = tmp_path_factory.mktemp("unbound")
    port = free_port(RESOLVER)
    lines = ["module-config: iterator", *LOCAL[:-3]]
    config = unbound_config(folder, port, lines, tail="\n".join(LOCAL[-3:]) + "\n")
    with running(["unbound", "-d", "-c", str(config)], folder / "unbound.log", RESOLVER, port, "bacgiang.gov.vn"):
        yield port


def probe(params: dict[str, Any], timeout: float = 2.0, **settings: Any) -> tuple[ProbeResult, float]:
    async def run() -> ProbeResult:
        collector = DnsCollector(DnsSettings.model_validate(settings))
        try:
            return await collector.probe("t", DnsParams.model_validate(params), timeout)
        finally:
            await collector.close()

    started = time.monotonic()
    result = asyncio.run(run())
    return result, time.monotonic() - started


def values(result: ProbeResult) -> dict[str, float]:
    return {s.family: s.value for s in result.samples}


CASES: list[tuple[dict[str, Any], str]] = [
    ({"name": "bacgiang.gov.vn", "addresses": ["127.0.25.10"]}, ""),
    ({"name": "bacgiang.gov.vn."}, ""),  # no expectation: any address will do
    ({"name": "dichvucong.bacgiang.gov.vn", "addresses": ["127.0.25.12", "127.0.25.11"]}, ""),
    ({"name": "dichvucong.bacgiang.gov.vn", "addresses": ["127.0.25.11"]}, "wrong_answer"),  # one too many
    ({"name": "bacgiang.gov.vn", "addresses": ["127.0.25.99"]}, "wrong_answer"),
    ({"name": "bacgiang.gov.vn", "type": "TXT", "regex": "^v=spf1 "}, ""),
    ({"name": "bacgiang.gov.vn", "type": "TXT", "regex": "DMARC"}, "wrong_answer"),
    ({"name": "bacgiang.gov.vn", "type": "MX", "regex": r"mail\.bacgiang\.gov\.vn\.$"}, ""),
    ({"name": "bacgiang.gov.vn", "transport": "tcp", "addresses": ["127.0.25.10"]}, ""),
    ({"name": "BacGiang.Gov.VN", "recursion": False}, ""),
    ({"name": "bacgiang.gov.vn", "type": "AAAA"}, "no_answer"),  # the name exists, without the type
    ({"name": "khongco.bacgiang.gov.vn"}, "nxdomain"),
    ({"name": "cổng.bacgiang.gov.vn"}, "nxdomain"),  # asked in IDNA form (xn--...), not refused as invalid
    ({"name": "www.refused.test"}, "query_refused"),
    ({"name": "www.broken.test"}, "servfail"),
]


@pytest.mark.parametrize(("params", "reason"), CASES, ids=[f"{p['name']}-{r or 'up'}-{i}" for i, (p, r)
                                                           in enumerate(CASES)])
def test_each_answer_has_its_reason(resolver: int, params: dict[str, Any], reason: str) -> None:
    result, _ = probe({"server": RESOLVER, "port": resolver, **params})
    assert (result.up, result.reason) == (not reason, reason), result.detail
    got = values(result)
    assert 0 < got["dns_lookup_seconds"] < 2.0
    assert got["dns_rcode"] == {"nxdomain": 3, "servfail": 2, "query_refused": 5}.get(reason, 0)
    if not reason:
        assert got["dns_answer_ok"] == 1 and got["dns_answer_records"] >= 1
        assert 0 < got["dns_answer_ttl_seconds"] <= 300
    assert {s.family for s in result.samples} <= {f.name for f in DnsCollector.families}


def test_silence_is_a_timeout_of_the_configured_length_with_retransmissions(resolver: int) -> None:
    result, took = probe({"server": RESOLVER, "port": resolver, "name": "www.silent.test"}, timeout=1.2,
                         retransmit_after=0.4)
    assert (result.up, result.reason) == (False, "timeout")
    assert 1.1 <= took < 1.6  # the whole timeout, not the first datagram's retransmission interval
    assert values(result)["dns_retransmits"] == 2  # sent at 0, 0.4 and 0.8 s


def test_a_closed_port_is_refused_at_once() -> None:
    result, took = probe({"server": NOBODY, "port": free_port(NOBODY), "name": "bacgiang.gov.vn"}, timeout=3.0)
    assert (result.up, result.reason) == (False, "refused")
    assert took < 1.0  # the ICMP port unreachable, not the timeout


def test_a_truncated_udp_answer_is_asked_again_over_tcp(resolver: int) -> None:
    result, _ = probe({"server": RESOLVER, "port": resolver, "name": "big.bacgiang.gov.vn", "type": "TXT",
                       "regex": "^39x"})
    assert (result.up, result.reason) == (True, ""), result.detail
    assert values(result)["dns_answer_records"] == BIG_TXT


@pytest.mark.parametrize(("params", "message"), [
    ({"name": "bacgiang.gov.vn", "type": "MX", "addresses": ["10.0.0.1"]}, "addresses are for A and AAAA"),
    ({"name": "bacgiang.gov.vn", "addresses": ["2001:db8::1"]}, "IPv4 addresses, not 2001:db8::1"),
    ({"name": "bacgiang..gov.vn"}, "expected a domain name"),
    ({"name": "-bad.gov.vn"}, "expected a domain name"),
    ({"name": "bacgiang.gov.vn", "type": "ANY"}, "Input should be"),
    ({"name": "bacgiang.gov.vn", "regex": "("}, "invalid regular expression"),
    ({"name": "bacgiang.gov.vn", "dnssec": "yes"}, "Input should be"),
])
def test_params_are_checked(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DnsParams.model_validate({"server": "10.24.0.53", **params})


def test_the_name_is_kept_in_idna_form() -> None:
    params = DnsParams.model_validate({"server": "10.24.0.53", "name": "Cổng.BacGiang.gov.vn."})
    assert params.name == "xn--cng-qmz.bacgiang.gov.vn"


def test_the_server_goes_through_the_probe_allowlist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The address field is ``server``, not ``host``: the allowlist must still see it."""
    from agent.app.runtime import ProbeNotAllowed, check_probe_allowlist
    from agent.config.loading import load_config

    config = tmp_path / "dns.yml"
    config.write_text(textwrap.dedent("""\
        province: {code: t, name_vi: Tỉnh Thử, name_en: Test Province}
        levels: [province]
        units: [{id: t, name_vi: Tỉnh Thử, level: province}]
        collectors: {dns: {interval: 30s, timeout: 2s}}
        targets:
          - {id: dns-portal, unit: t, collector: dns, params: {server: 10.24.0.53, name: bacgiang.gov.vn}}
        """), encoding="utf-8")
    monkeypatch.setenv("EGOV_AGENT_PROBE_ALLOW", "127.0.0.0/8")
    with pytest.raises(ProbeNotAllowed, match=r"target dns-portal: address 10\.24\.0\.53 is outside"):
        check_probe_allowlist(load_config(config))


def test_validating_a_configuration_loads_no_dnspython() -> None:
    code = textwrap.dedent("""
        import json, sys
        from collectors import REGISTRY
        settings, params = REGISTRY.models("dns")
        params.model_validate({"server": "10.24.0.53", "name": "bacgiang.gov.vn", "addresses": ["203.0.113.5"]})
        import collectors.dns
        print(json.dumps([collectors.dns.DESCRIPTOR.kind, sorted(m for m in sys.modules if m.startswith("dns"))]))
        """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["dns", []]
    assert REGISTRY["dns"] is DnsCollector and REGISTRY.models("dns") == (DnsSettings, DnsParams)
