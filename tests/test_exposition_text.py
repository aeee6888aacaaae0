"""The incremental /metrics text is prometheus_client's, byte for byte, over a demo-sized store.

Bắc Giang's configuration (1,170 targets of every kind) with a store filled as probes fill it: every
family of every collector with label values holding quotes, backslashes, newlines and Vietnamese,
targets down with several failure reasons, targets never probed, collector self-metrics, KPIs and
units. Both formats the agent serves, rendered again after some targets changed (the cached lines of
the others reused), then linted by promtool.
"""

from __future__ import annotations

import gzip
import itertools
import subprocess
from dataclasses import replace

import pytest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from support.paths import REPO
from support.tools import promtool

from agent.app.runtime import Agent
from agent.config.loading import load_config
from collectors.api import Family, ProbeResult, Sample
from exporters.text_format import Only

TRICKY = ('quote " inside', "back\\slash", "new\nline", "Xã Đồng Sơn (huyện Yên Dũng)", "", '\\"\n\\n')
ACCEPTS = ("", "text/plain; version=0.0.4", "application/openmetrics-text; version=1.0.0",
           "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8", "*/*",
           "application/openmetrics-text; version=1.0.0; escaping=dots", "application/openmetrics-text; version=2.0.0",
           "text/plain; version=1.0.0; escaping=values")


@pytest.fixture(scope="module")
def agent() -> Agent:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("EGOV_AGENT_PROBE_ALLOW")  # the shipped province names real hosts; nothing is probed here
        built = Agent(load_config(REPO / "config" / "provinces" / "bac-giang.yml", resolve_secrets=False))
    view = built.snapshots.view
    tricky = itertools.cycle(TRICKY)
    for i, (target_id, labels) in enumerate(list(view.targets.items())[::7]):  # names and tags of some
        view.targets[target_id] = replace(labels, name=next(tricky), tags=(next(tricky), "a,b") if i % 2 else ())
    for i, target_id in enumerate(view.targets):
        if i % 11 == 10:
            continue  # never probed: only its egov_target_info line
        probe(built, target_id, i, 0)
    built.store.record_self("snmp", (Family("snmp_fast_path", "counter", "Fast path use.", ("outcome",)),),
                            [Sample("snmp_fast_path", 3.0, ("hit",)), Sample("snmp_fast_path", 1.0, (TRICKY[0],))])
    return built


def probe(agent: Agent, target_id: str, i: int, round_: int) -> None:
    kind = agent.snapshots.view.targets[target_id].collector
    families = agent.snapshots.view.families[kind]
    tricky = itertools.cycle(TRICKY[(i + round_) % len(TRICKY):] + TRICKY)
    samples = [Sample(f.name, v, tuple(next(tricky) for _ in f.labels))
               for f, v in zip(families, itertools.cycle((0.0, 1.5, 1e-7, 123456789.0, 1e22, float("inf"), 2.0)),
                               strict=False) if (i + round_) % 5 or f is families[0]]
    up = (i + round_) % 6 != 0
    reason = ("timeout", "refused", "snmp_no_such_object")[(i + round_) % 3]
    agent.store.record(target_id, kind, ProbeResult(up, "" if up else reason, samples), 0.001 * (i % 97),
                       1_764_000_000.25 + i + round_)


def renders(agent: Agent, accept: str) -> tuple[bytes, bytes]:
    encoder, content_type = choose_encoder(accept)
    collector = agent.exposition.collector
    snap, status = collector.latest()
    expected = encoder(Only(list(collector.metrics(snap, status))))
    return agent.exposition.compose(snap, status, content_type, encoder, process=False), expected


@pytest.mark.parametrize("accept", ACCEPTS)
def test_both_formats_are_prometheus_clients_bytes(agent: Agent, accept: str) -> None:
    got, expected = renders(agent, accept)
    assert got == expected
    assert agent.exposition.targets.supports(agent.snapshots.view)


def test_a_render_reformats_only_the_targets_probed_since(agent: Agent) -> None:
    renders(agent, "")
    changed = list(agent.snapshots.view.targets)[3::40]
    for round_ in (1, 2):
        for i, target_id in enumerate(changed):
            probe(agent, target_id, i, round_)
        for accept in ACCEPTS:
            got, expected = renders(agent, accept)
            assert got == expected
        assert agent.exposition.targets.reformatted == 0  # the second format reused the first one's lines
    agent.store.record(changed[0], agent.snapshots.view.targets[changed[0]].collector,
                       ProbeResult(True, "", []), 0.01)  # a target whose samples all went away
    got, expected = renders(agent, "application/openmetrics-text; version=1.0.0")
    assert got == expected
    assert agent.exposition.targets.reformatted == 1


def test_the_text_passes_promtool_and_openmetrics_parses(agent: Agent) -> None:
    got, _ = renders(agent, "")
    lint = subprocess.run([promtool(), "check", "metrics"], input=got, capture_output=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    got, _ = renders(agent, "application/openmetrics-text; version=1.0.0")  # promtool reads only the text format
    families = list(parse_openmetrics(got.decode()))
    assert sum(len(f.samples) for f in families) > 5000
    values = {v for f in families for s in f.samples for v in s.labels.values()}
    assert set(TRICKY) <= values  # each read back as it was


def test_the_served_body_is_the_composed_one(agent: Agent) -> None:
    body, content_type = agent.exposition.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n") and body.count(b"# EOF\n") == 1
    assert b"\nprocess_cpu_seconds_total " in body and b"\negov_target_up{" in body


def types(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if line.startswith(b"# TYPE")]


def test_every_registered_collector_is_rendered(agent: Agent) -> None:
    """The daemon registers the HTTP server's connection counters beside the agent's collector."""
    from agent.app.webserver import ConnectionStats, Limits

    stats = ConnectionStats(Limits())
    stats.dropped["capacity"] = 3
    agent.exposition.registry.register(stats)
    try:
        for accept in ("", "application/openmetrics-text; version=1.0.0"):
            encoder, content_type = choose_encoder(accept)
            snap, status = agent.exposition.collector.latest()
            got = agent.exposition.compose(snap, status, content_type, encoder, process=False)
            assert b'egov_web_connections_dropped_total{reason="capacity"} 3.0\n' in got
            assert types(got) == [t for t in types(encoder(agent.exposition.registry))
                                  if not t.startswith((b"# TYPE process_", b"# TYPE python_"))]
    finally:
        agent.exposition.registry.unregister(stats)


def test_a_full_render_does_not_pace_the_next_one_but_an_incremental_one_does() -> None:
    """The refresh thread waits 10 x the charged render CPU: a full render's (once per configuration) pause
    left the first round unshown for over a minute at 40,000 targets; incremental renders keep the ceiling."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("EGOV_AGENT_PROBE_ALLOW")
        fresh = Agent(load_config(REPO / "config" / "provinces" / "bac-giang.yml", resolve_secrets=False))
    encoder, content_type = choose_encoder("")
    exposition = fresh.exposition
    exposition._render(content_type, encoder)
    assert exposition.targets.first_time == exposition.targets.reformatted == len(fresh.snapshots.view.targets)
    assert exposition.last_render_seconds > 0 and exposition.pace_seconds == 0
    for i, target_id in enumerate(list(fresh.snapshots.view.targets)[::3]):
        probe(fresh, target_id, i, 0)
    exposition._render(content_type, encoder)
    assert exposition.targets.first_time == 0 and exposition.targets.reformatted > 0
    assert exposition.pace_seconds == exposition.last_render_seconds > 0


def test_where_every_scraper_asks_for_gzip_only_the_gzip_is_kept() -> None:
    """Prometheus always asks for gzip: the refresh thread then keeps the 0.3 MB gzip, not the 4 MB text
    beside it. A scraper without gzip is still served at once after one decompression, and from then on the
    text is kept again."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("EGOV_AGENT_PROBE_ALLOW")
        fresh = Agent(load_config(REPO / "config" / "provinces" / "bac-giang.yml", resolve_secrets=False))
    exposition = fresh.exposition
    exposition.min_interval = 3600.0  # the refresh thread runs, but only the refresh() calls here render
    exposition.start()
    om = "application/openmetrics-text; version=1.0.0"
    targets = list(fresh.snapshots.view.targets)
    try:
        body, content_type, encoding = exposition.render_encoded(om, "gzip")
        assert encoding == "gzip" and content_type.startswith("application/openmetrics-text")
        assert gzip.decompress(body).endswith(b"# EOF\n")
        probe(fresh, targets[0], 1, 1)
        exposition.refresh()
        kept = exposition._cache[content_type]
        assert kept.body is None and kept.gzipped is not None  # the text went with the rendering it came from
        assert exposition.cached(om, "gzip") == (kept.gzipped, content_type, "gzip")
        assert exposition.cached(om, None) is None  # not ready-made: a worker decompresses it
        text, _, encoding = exposition.render_encoded(om, None)
        assert encoding is None and text == gzip.decompress(kept.gzipped) and text.endswith(b"# EOF\n")
        assert b'target="' + targets[0].encode() in text
        probe(fresh, targets[1], 2, 1)
        exposition.refresh()
        both = exposition._cache[content_type]
        assert both is not kept and both.body is not None and both.gzipped == gzip.compress(
            both.body, compresslevel=6, mtime=0)
        assert exposition.cached(om, None) == (both.body, content_type, None)
    finally:
        exposition.stop()
