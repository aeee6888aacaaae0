"""The shared protocol clients: one SnmpClient held by the snmp, power and mcu collectors, one HTTP/JSON client
(collectors/httpjson.py) for the mcu collector and the http_json sources.

Against real peers on 127.0.28.0/24: the lab's MCU simulator (its SNMP agent and its HTTP API) and a plain
HTTP server that dribbles its body. What the composition brings the MCU: SNMP faults named as the snmp
collector names them (garbage is ``snmp_malformed``, not a timeout), its endpoints table read in bulk, its
fields read by jsonpath-ng (a JSONPath works as well as a pointer or a dotted path).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from collectors.api import ProbeResult
from collectors.httpjson import HttpJsonError, JsonClient, JsonField, parse_jsonpath
from collectors.lab_addresses import AddressPool
from collectors.mcu.lab import McuSimulator
from collectors.mcu.probe import McuCollector, McuParams, McuSettings
from collectors.power.probe import PowerCollector, PowerSettings
from collectors.runner import run_probe
from collectors.snmp.client import SnmpClient
from collectors.snmp.probe import SnmpCollector, SnmpSettings

NETWORK = ipaddress.ip_network("127.0.28.0/24")
ARC = "1.3.6.1.4.1.59059"
OIDS = {"active_conferences": f"{ARC}.1.1.0", "registered_endpoints": f"{ARC}.1.4.0", "endpoint_ids": f"{ARC}.2.1.2"}
ENDPOINTS = [f"ep-{i:03d}" for i in range(200)]
os.environ.setdefault("EGOV_TEST_CLIENTS_COMMUNITY", "clients-test-community")


def test_snmp_power_and_mcu_hold_one_snmp_client_each_by_composition() -> None:
    assert not issubclass(PowerCollector, SnmpCollector)
    for collector in (SnmpCollector(SnmpSettings()), PowerCollector(PowerSettings()), McuCollector(McuSettings())):
        assert isinstance(collector.snmp, SnmpClient), type(collector).__name__


class SipPeers:
    """The lab as the MCU simulator sees it (collectors.simulation.Peers), with a SIP side whose endpoints
    answer: these ids, without starting a SIP stack for each."""

    def __init__(self, endpoints: list[str]) -> None:
        self.endpoints = endpoints

    def simulator(self, kind: str) -> Any:
        return self if kind == "sip" else None

    def registered(self) -> list[str]:
        return self.endpoints


def mcu_over_snmp(states: list[str]) -> tuple[dict[str, ProbeResult], dict[str, int], int]:
    """Probe one lab MCU over SNMPv2c in each state; (results, replies dropped, requests it answered)."""

    async def run() -> tuple[dict[str, ProbeResult], dict[str, int], int]:
        simulator = McuSimulator(AddressPool(NETWORK), peers=SipPeers(ENDPOINTS), slow_delay=3.0)
        collector = McuCollector(McuSettings(snmp_timeout=0.5))
        try:
            raw = await simulator.add("m", {"adapter": "snmp", "host": "10.30.0.3", "retries": 0,
                                            "community": "env:EGOV_TEST_CLIENTS_COMMUNITY", "oids": OIDS,
                                            "expected_endpoints": ["ep-007", "ep-999"]}, True)
            params = McuParams.model_validate(raw)
            out = {}
            for state in states:
                await simulator.set_state("m", state)
                out[state] = await run_probe(collector, "m", params, 2.0)
            return out, dict(collector.snmp.dropped), simulator.mcus["m"].requests
        finally:
            await collector.close()
            await simulator.close()

    return asyncio.run(run())


def test_the_mcu_reads_its_endpoints_table_in_bulk() -> None:
    results, _, requests = mcu_over_snmp(["up"])
    result = results["up"]
    assert result.up, result
    got = {(s.family, s.labels): s.value for s in result.samples}
    assert got[("mcu_registered_endpoints", ())] == len(ENDPOINTS)
    assert got[("mcu_endpoint_registered", ("ep-007",))] == 1
    assert got[("mcu_endpoint_registered", ("ep-999",))] == 0
    assert got[("mcu_unexpected_endpoints", ())] == len(ENDPOINTS) - 1
    # One GET, then GETBULK rounds of 25: a GETNEXT per id would be 201 more.
    assert requests <= 1 + len(ENDPOINTS) // 25 + 1, requests


def test_mcu_snmp_faults_have_the_snmp_collectors_reasons() -> None:
    results, dropped, _ = mcu_over_snmp(["garbage", "error", "slow", "down", "up"])
    reasons = {state: (r.up, r.reason) for state, r in results.items()}
    assert reasons == {"garbage": (False, "snmp_malformed"), "error": (False, "snmp_error"),
                       "slow": (False, "timeout"), "down": (False, "timeout"), "up": (True, "")}, reasons
    assert dropped["malformed"] >= 1, dropped
    assert os.environ["EGOV_TEST_CLIENTS_COMMUNITY"] not in " ".join(r.detail for r in results.values())


def test_mcu_fields_may_be_jsonpath() -> None:
    async def run() -> ProbeResult:
        simulator = McuSimulator(AddressPool(NETWORK), peers=SipPeers(ENDPOINTS[:3]))
        collector = McuCollector(McuSettings())
        try:
            raw = await simulator.add("m", {"adapter": "http", "url": "http://10.30.0.9/api/status", "fields": {
                "ports_total": "$.ports.total", "ports_in_use": "/ports/in_use",
                "endpoint_ids": "$.registrations[?(@.protocol == 'sip')].id"}}, True)
            return await run_probe(collector, "m", McuParams.model_validate(raw), 2.0)
        finally:
            await collector.close()
            await simulator.close()

    result = asyncio.run(run())
    assert result.up, result
    got = {s.family: s.value for s in result.samples}
    assert got["mcu_registered_endpoints"] == 3 and got["mcu_ports_capacity"] > 0, got


@pytest.mark.parametrize(("path", "document", "reason"), [
    ("/conferences", [1, 2], "wrong_type"),
    ("/conferences", None, "missing_field"),
    ("ports.in_use", {"ports": 7}, "wrong_type"),
    ("/ports/free", {"ports": {"in_use": 1}}, "missing_field"),
    ("$.don_vi[2].ma", {"don_vi": [{"ma": "a"}]}, "missing_field"),
    ("$.don_vi[*].ma", {"don_vi": [{"ma": "a"}, {"ma": "b"}]}, "wrong_type"),  # one value asked, two found
])
def test_a_field_that_is_not_there_says_why(path: str, document: object, reason: str) -> None:
    with pytest.raises(HttpJsonError) as raised:
        JsonField(path).one(document)
    assert raised.value.reason == reason, raised.value.message


class Dribble(BaseHTTPRequestHandler):
    """Headers at once, then a byte of the body every 0.2 s: each read is quick, the whole is not."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "40")
        self.end_headers()
        for byte in b'{"conferences": 3, "padding": "......"}\n'[:40]:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.2)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dribbling() -> Iterator[str]:
    server = ThreadingHTTPServer((str(NETWORK[9]), 0), Dribble)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{NETWORK[9]}:{server.server_address[1]}/status"
    finally:
        server.shutdown()
        server.server_close()


def test_the_deadline_ends_a_fetch_whose_body_dribbles(dribbling: str) -> None:
    async def run() -> tuple[str, float]:
        client = JsonClient()
        started = time.monotonic()
        try:
            await client.get(dribbling, deadline=0.8)
        except HttpJsonError as failure:
            return failure.reason, time.monotonic() - started
        finally:
            await client.aclose()
        return "", time.monotonic() - started

    reason, seconds = asyncio.run(run())
    assert reason == "timeout" and seconds < 2.0, (reason, seconds)


PATHS = ["$.don_vi[*].ma_don_vi", "$.ports.total", "$.registrations[?(@.protocol == 'sip')].id",
         "$.a[0].b", "$..ten", "$.x[*].y + 1", "$.rows[?(@.n > 2)]"]


def test_one_reused_jsonpath_parser_reads_as_jsonpath_ng_s_own() -> None:
    """parse_jsonpath keeps one parser per thread: each path reads as jsonpath_ng.ext.parse reads it, in any
    order and thread, also after a path that does not parse."""
    from jsonpath_ng.ext import parse

    document = {"don_vi": [{"ma_don_vi": "a", "ten": "A"}], "ports": {"total": 4}, "a": [{"b": 1}],
                "registrations": [{"protocol": "sip", "id": 7}, {"protocol": "h323", "id": 8}],
                "x": [{"y": 1}], "rows": [{"n": 1}, {"n": 3}]}

    def read(path: str) -> tuple[str, list[object]]:
        expression = parse_jsonpath(path)
        return repr(expression), [m.value for m in expression.find(document)]

    expected = {p: (repr(parse(p)), [m.value for m in parse(p).find(document)]) for p in PATHS}
    for path in [*PATHS, *reversed(PATHS)]:
        assert read(path) == expected[path]
        with pytest.raises(ValueError, match="invalid JSONPath"):
            parse_jsonpath("$.a[")
    got: dict[str, tuple[str, list[object]]] = {}
    threads = [threading.Thread(target=lambda p=p: got.__setitem__(p, read(p))) for p in PATHS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert got == expected
