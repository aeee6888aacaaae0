"""Every outcome of an HTTP(S) probe, through the real agent (``egov-agent once --format prometheus``)
against the lab's real HTTP and HTTPS servers (certificates from trustme), each with its own label."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from agent.lab import Lab, write_config

TIMEOUT = 1.5
CAP = 1024 * 1024
ND43 = ["Giới thiệu", "Tin tức, sự kiện", "Thông tin chỉ đạo, điều hành", "Lấy ý kiến góp ý"]

# target id -> (lab state, scheme, extra params, expected up, expected reason)
SCENARIOS: dict[str, tuple[str, str, dict, bool, str]] = {
    "valid": ("up", "https", {"contains": ND43, "title": "valid.bacgiang.gov.vn"}, True, ""),
    "plain-http": ("up", "http", {"regex": [r"<h1>[^<]+</h1>"]}, True, ""),
    "expired": ("cert_expired", "https", {}, False, "tls_expired"),
    "wrong-host": ("cert_wrong_host", "https", {}, False, "tls_hostname_mismatch"),
    "self-signed": ("cert_self_signed", "https", {}, False, "tls_untrusted"),
    "unknown-ca": ("cert_untrusted", "https", {}, False, "tls_untrusted"),
    "insecure-self-signed": ("cert_self_signed", "https", {"tls_verify": False}, True, ""),
    "slow": ("slow", "https", {}, False, "timeout"),
    "error": ("error", "https", {}, False, "status_mismatch"),
    "error-expected": ("error", "https", {"expect_status": [500]}, True, ""),
    "wrong-content": ("wrong_content", "https", {"contains": ND43}, False, "content_mismatch"),
    "wrong-title": ("wrong_content", "https", {"title": "wrong-title.bacgiang.gov.vn"}, False, "content_mismatch"),
    "huge": ("huge_body", "https", {"max_body_bytes": CAP}, False, "body_too_large"),
    "loop": ("redirect_loop", "https", {"max_redirects": 3}, False, "too_many_redirects"),
    "down": ("down", "https", {}, False, "connect_error"),
}


def _province(path: Path) -> None:
    targets = [
        {"id": tid, "unit": "so-tt-tt", "collector": "http", "tags": ["portal"],
         "params": {"url": f"{scheme}://{tid}.bacgiang.gov.vn/", **extra}}
        for tid, (_state, scheme, extra, _up, _reason) in SCENARIOS.items()
    ]
    config = {
        "province": {"code": "lab", "name_vi": "Tỉnh thử nghiệm", "name_en": "Test province"},
        "levels": ["province", "department"],
        "units": [{"id": "tinh", "name_vi": "Tỉnh", "level": "province",
                   "children": [{"id": "so-tt-tt", "name_vi": "Sở Thông tin và Truyền thông", "level": "department"}]}],
        "collectors": {"http": {"interval": "30s", "timeout": f"{TIMEOUT}s", "concurrency": 32,
                                "settings": {"threads": 32}}},
        "targets": targets,
        "kpis": [{"id": "portals_up", "class": "direct", "title_vi": "Cổng hoạt động", "title_en": "Portals up",
                  "measure": {"kind": "coverage", "select": {"collector": "http", "tags": ["portal"]}}}],
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Start the lab, break each portal as its scenario says, run ``egov-agent once`` once for all."""
    tmp = tmp_path_factory.mktemp("http-outcomes")
    _province(tmp / "province.yml")
    lab = Lab(tmp / "province.yml", down_ratio=0.0)
    data = asyncio.run(lab.start())
    try:
        for tid, (state, *_rest) in SCENARIOS.items():
            if state != "up":
                asyncio.run(lab.set_state(tid, state))
        write_config(data, tmp / "agent.yml")
        env = {**os.environ, "EGOV_AGENT_PROBE_ALLOW": "127.0.0.0/8,::1/128"}
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "agent.app.cli", "once", "--config", str(tmp / "agent.yml"),
                               "--format", "prometheus"], env=env, capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        families = {f.name: f for f in text_string_to_metric_families(proc.stdout)}
        yield {"families": families, "lab": lab, "data": data, "elapsed": elapsed, "stderr": proc.stderr}
    finally:
        asyncio.run(lab.close())


def _value(families, name: str, target: str, **labels: str) -> float | None:
    for sample in families[name].samples:
        if sample.labels.get("target") == target and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def _reasons(families, target: str) -> dict[str, float]:
    return {s.labels["reason"]: s.value for s in families["egov_target_probe_failures"].samples
            if s.labels.get("target") == target and s.name.endswith("_total")}


@pytest.mark.parametrize("target", list(SCENARIOS))
def test_each_outcome_has_its_own_label(run, target):
    _state, _scheme, _extra, up, reason = SCENARIOS[target]
    families = run["families"]
    assert _value(families, "egov_target_up", target) == (1.0 if up else 0.0)
    assert _reasons(families, target) == ({} if up else {reason: 1.0})


def test_failure_reasons_are_distinct_per_kind_of_fault(run):
    by_reason: dict[str, set[str]] = {}
    for target in SCENARIOS:
        for reason in _reasons(run["families"], target):
            by_reason.setdefault(reason, set()).add(target)
    # Self-signed and unknown-CA are one fault (an untrusted chain), a missing section and a wrong
    # title another (wrong content); every other fault has a word of its own.
    assert by_reason.pop("tls_untrusted") == {"self-signed", "unknown-ca"}
    assert by_reason.pop("content_mismatch") == {"wrong-content", "wrong-title"}
    assert all(len(targets) == 1 for targets in by_reason.values()), by_reason
    assert set(by_reason) == {"tls_expired", "tls_hostname_mismatch", "timeout", "status_mismatch",
                              "body_too_large", "too_many_redirects", "connect_error"}
    errors = {s.labels["reason"]: s.value for s in run["families"]["egov_collector_errors"].samples
              if s.labels.get("collector") == "http" and s.name.endswith("_total")}
    assert errors["tls_untrusted"] == 2.0 and errors["timeout"] == 1.0


def test_status_codes_and_content(run):
    f = run["families"]
    assert _value(f, "egov_http_status_code", "valid") == 200
    assert _value(f, "egov_http_status_code", "error") == 500
    assert _value(f, "egov_http_status_code", "error-expected") == 500
    assert _value(f, "egov_http_status_code", "down") == 0
    assert _value(f, "egov_http_content_ok", "valid") == 1
    assert _value(f, "egov_http_content_checks_failed", "valid") == 0
    assert _value(f, "egov_http_content_ok", "wrong-content") == 0
    assert _value(f, "egov_http_content_checks_failed", "wrong-content") == len(ND43)
    assert _value(f, "egov_http_content_checks_failed", "wrong-title") == 1
    assert _value(f, "egov_http_content_ok", "plain-http") == 1
    assert _value(f, "egov_http_body_bytes", "valid") > 500


def test_redirect_loop_stops_at_the_limit(run):
    f = run["families"]
    assert _value(f, "egov_http_redirects", "loop") == 3
    assert _value(f, "egov_http_status_code", "loop") == 302


def test_huge_body_stops_at_the_cap(run):
    f = run["families"]
    assert _value(f, "egov_http_body_bytes", "huge") <= CAP
    assert _value(f, "egov_http_total_seconds", "huge") < TIMEOUT
    portal = run["lab"].simulators["http"].portals["huge"]
    assert portal.huge_bytes_sent < 64 * CAP  # the server was cut off long before its 1 GiB


def test_slow_portal_times_out_in_the_processing_phase(run):
    f = run["families"]
    processing = _value(f, "egov_http_phase_seconds", "slow", phase="processing")
    assert TIMEOUT * 0.8 < processing <= TIMEOUT
    assert _value(f, "egov_http_first_byte_seconds", "slow") is None  # no response came
    assert run["elapsed"] < TIMEOUT + 10  # one round, the slow portal delaying nobody beyond its timeout


def test_phases_add_up_to_the_total(run):
    f = run["families"]
    phases = {p: _value(f, "egov_http_phase_seconds", "valid", phase=p)
              for p in ("resolve", "connect", "tls", "processing", "transfer")}
    total = _value(f, "egov_http_total_seconds", "valid")
    assert phases["tls"] > 0 and phases["connect"] > 0
    assert sum(phases.values()) == pytest.approx(total, abs=0.002)
    assert 0 < _value(f, "egov_http_first_byte_seconds", "valid") <= total
    assert _value(f, "egov_http_phase_seconds", "plain-http", phase="tls") == 0


def _served_certificate(data, target: str) -> x509.Certificate:
    params = next(t["params"] for t in data["targets"] if t["id"] == target)
    pem = ssl.get_server_certificate((params["address"], params["port"]))
    return x509.load_pem_x509_certificate(pem.encode())


@pytest.mark.parametrize(("target", "chain", "host"), [
    ("valid", 1, 1), ("expired", 0, 1), ("wrong-host", 1, 0), ("self-signed", 0, 1), ("unknown-ca", 0, 1),
    ("insecure-self-signed", 0, 1),
])
def test_tls_signals_are_separate(run, target, chain, host):
    f = run["families"]
    assert _value(f, "egov_http_tls_chain_valid", target) == chain
    assert _value(f, "egov_http_tls_hostname_valid", target) == host
    assert _value(f, "egov_http_tls_ok", target) == (1 if chain and host else 0)
    expiry = _value(f, "egov_http_tls_cert_expiry_timestamp_seconds", target)
    assert expiry == _served_certificate(run["data"], target).not_valid_after_utc.timestamp()
    if target == "expired":
        assert expiry < dt.datetime.now(dt.UTC).timestamp()


def test_plain_http_has_no_tls_series(run):
    assert _value(run["families"], "egov_http_tls_ok", "plain-http") is None


def test_coverage_kpi_counts_the_portals_up(run):
    f = run["families"]
    ups = sum(1 for s in SCENARIOS.values() if s[3])
    value = next(s.value for s in f["egov_kpi_value"].samples if s.labels["kpi"] == "portals_up")
    assert value == pytest.approx(ups / len(SCENARIOS))
