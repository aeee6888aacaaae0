"""A collector kind's libraries load only when the configuration uses the kind, and check-config loads none.

Each check runs in a fresh interpreter and reads its ``sys.modules``: in this one, other tests have
long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from support.province import Province

from collectors import REGISTRY, discover_kinds

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("pysnmp", "pyasn1", "pycurl", "httpx", "cryptography", "openpyxl", "numpy")


def icmp_only() -> Province:
    p = Province(code="t", root="t").unit("c1", "Xã Một")
    p.collector("icmp", interval="30s", timeout="2s")
    return p.target("r1", "c1", "icmp", params={"host": "127.0.0.1"})


def loaded_modules(code: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter holds after running ``code``."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))
        """)
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "EGOV_AGENT_PROBE_ALLOW": "127.0.0.0/8"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_icmp_only_agent_loads_neither_pysnmp_nor_pycurl(tmp_path: Path) -> None:
    config = icmp_only().write(tmp_path / "icmp.yml")
    loaded = loaded_modules(f"""
        from agent.config.loading import load_config
        from agent.app.runtime import Agent
        agent = Agent(load_config({str(config)!r}))
        assert sorted(agent.collectors) == ["icmp"]
        """)
    assert loaded == []


def test_https_probes_load_pycurl_but_neither_cryptography_nor_service_identity(tmp_path: Path) -> None:
    """An HTTPS portal's certificate is read with pyasn1 (collectors/http/certs.py): its expiry and the
    hostname signal come out, and cryptography with service_identity (8.9 MiB) never load in the agent."""
    import http.server
    import ssl
    import threading

    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    expiry = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).not_valid_after_utc.timestamp()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/"
        config = (icmp_only().collector("http", interval="30s", timeout="5s")
                  .target("w1", "c1", "http", params={"url": url, "ca_bundle": str(bundle)})
                  .write(tmp_path / "http.yml"))
        loaded = loaded_modules(f"""
            import asyncio, sys
            from agent.config.loading import load_config
            from agent.app.runtime import Agent
            agent = Agent(load_config({str(config)!r}))
            asyncio.run(agent.collect_once())
            lines = agent.exposition.render(None)[0].decode().splitlines()
            def value(name):
                return [float(line.rsplit(' ', 1)[1]) for line in lines if line.startswith(name + '{{')]
            assert value('egov_http_status_code') == [200.0], lines
            assert value('egov_http_tls_cert_expiry_timestamp_seconds') == [{expiry!r}]
            assert value('egov_http_tls_hostname_valid') == [1.0] and value('egov_http_tls_chain_valid') == [1.0]
            assert 'service_identity' not in sys.modules
            """)
    finally:
        server.shutdown()
        server.server_close()
    assert loaded == ["pyasn1", "pycurl"]


def test_check_config_of_bac_giang_validates_every_kind_without_their_libraries() -> None:
    loaded = loaded_modules("""
        import sys
        from agent.app.cli import main
        assert main(["check-config", "config/provinces/bac-giang.yml", "--skip-secrets"]) == 0
        """)
    assert loaded == []


def test_check_config_of_bac_giang_loads_no_kind_s_probe() -> None:
    """Every kind has light models and the sources import asyncio only to run: check-config imports no probe
    module (psutil, icmplib, the sip client), nor asyncio or ssl."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from agent.app.cli import main
        assert main(["check-config", "config/provinces/bac-giang.yml", "--skip-secrets"]) == 0
        probes = [m for m in sys.modules if m.startswith("collectors.") and m.endswith(".probe")]
        print(sorted(probes + [m for m in ("psutil", "icmplib", "asyncio", "ssl") if m in sys.modules]))
        """)], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "EGOV_AGENT_PROBE_ALLOW": "127.0.0.0/8"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_configured_kind_is_loaded_to_run_it(tmp_path: Path) -> None:
    config = icmp_only().collector("snmp", interval="30s", timeout="5s").write(tmp_path / "snmp.yml")
    assert "pysnmp" in loaded_modules(f"""
        from agent.config.loading import load_config
        load_config({str(config)!r})
        """)


@pytest.mark.parametrize("kind", sorted(k for k, d in discover_kinds().items() if d.models))
def test_light_models_are_the_collectors_own(kind: str) -> None:
    """The models check-config validates with are the ones the collector runs with."""
    cls = REGISTRY[kind]
    fresh = REGISTRY.__class__()  # a registry that has loaded nothing: it answers from the light module
    settings, params = fresh.models(kind)
    assert (settings, params) == (cls.Settings, cls.Params)


def test_registry_takes_kinds_of_its_own() -> None:
    registry = REGISTRY.__class__()
    registry["gate"] = REGISTRY["tcp"]
    assert "gate" in registry and "gate" in list(registry) and registry.models("gate") == registry.models("tcp")
    registry.pop("gate")
    assert "gate" not in registry


def test_every_package_under_collectors_that_declares_a_kind_is_found() -> None:
    """Kinds are discovered, not listed: each package's DESCRIPTOR names its collector, found on first use."""
    kinds = discover_kinds()
    assert {"host", "http", "icmp", "mcu", "power", "sip", "snmp", "tcp"} <= set(kinds)
    for kind, descriptor in kinds.items():
        assert descriptor.kind == kind
        assert REGISTRY[kind].kind == kind


def test_the_web_server_and_its_pages_load_no_http_client() -> None:
    """The status page names the report's areas (exporters.report.words): the report's query client keeps
    httpx for a report, so the long-running agent, which never writes one, does not hold it."""
    assert loaded_modules("""
        import agent.app.daemon, exporters.status_page, exporters.unit_page
        import exporters.report
        """) == []
