"""The sources: section and the KPIs that read it: every mistake listed at once, with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.sources import kpi, province

from agent.config.loading import load_config
from agent.config.yamlsource import ConfigError

GOOD_SOURCE = """\
  - id: qlvb
    kind: http_json
    granularity: daily
    url: https://qlvb.example.gov.vn/api
    auth: {bearer: "env:EGOV_TEST_TOKEN"}
    params: {tu_ngay: "{period_start}"}
    series:
      edoc: {items: "$.don_vi[*]", unit: $.ma, numerator: $.dien_tu, denominator: $.tong}
      count: {value: $.tong_so}
"""


def problems(tmp_path: Path, sources: str, kpis: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(province(tmp_path, sources, kpis))
    return [str(p) for p in caught.value.problems]


def test_a_valid_source_and_its_kpis_load(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EGOV_TEST_TOKEN", "t0ken-value")
    loaded = load_config(province(tmp_path, GOOD_SOURCE, kpi("edoc", "{kind: ratio, source: qlvb, series: edoc}")
                                  + kpi("count", "{kind: value, source: qlvb, series: count}")))
    spec = loaded.source_specs["qlvb"]
    assert spec.interval == 900 and spec.stale_limit == 2700
    assert "t0ken-value" not in repr(spec)


def test_reference_mistakes_are_listed_together(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EGOV_TEST_TOKEN", "x")
    found = problems(tmp_path, GOOD_SOURCE + """\
  - id: qlvb
    kind: ftp
  - id: files
    kind: file_drop
    granularity: monthly
    folder: bao-cao
    columns: {unit: u, date: d}
    unit_map: {"000.00.12.H03": no-such-unit}
    series:
      w: {numerator: a, denominator: b}
""", kpi("a", "{kind: ratio, source: nowhere, series: edoc}")
        + kpi("b", "{kind: ratio, source: qlvb, series: nope}")
        + kpi("c", "{kind: ratio, source: qlvb, series: count}")
        + kpi("d", "{kind: value, source: qlvb, series: edoc}")
        + kpi("e", "{kind: ratio, source: qlvb}")
        + kpi("f", "{kind: ratio, source: qlvb, series: edoc, levels: [hamlet], under: nobody, group_by: ward}")
        + kpi("g", "{kind: ratio, source: manual, series: edoc}"))
    text = "\n".join(found)
    expected = [
        "sources[1].kind: unknown source kind 'ftp'",
        "sources[1].id: duplicate source id 'qlvb'",
        "sources[2].unit_map.000.00.12.H03: unknown unit 'no-such-unit'",
        "kpis[0].measure.source: unknown source 'nowhere' (sources: files, qlvb; or manual)",
        "kpis[1].measure.series: source 'qlvb' has no series 'nope'; it has ['count', 'edoc']",
        "kpis[2].measure.series: a ratio KPI needs a series with numerator and denominator; 'count' has a value",
        "kpis[3].measure.series: a value KPI needs a series with a value; 'edoc' has a ratio",
        "kpis[4].measure: a KPI read from source 'qlvb' needs series: one of ['count', 'edoc']",
        "kpis[5].measure.levels[0]: unknown level 'hamlet'",
        "kpis[5].measure.under: unknown unit 'nobody'",
        "kpis[5].measure.group_by: unknown level 'ward'",
        "kpis[6].measure.source: source is manual but the configuration has no manual: section",
        "kpis[6].measure.series: only a KPI read from a source (not manual) takes series",
    ]
    for line in expected:
        assert line in text, f"missing: {line}\n---\n{text}"
    assert all("province.yml:" in line for line in found)


def test_kind_settings_are_validated_with_their_location(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EGOV_TEST_TOKEN", "the-token-itself")
    found = problems(tmp_path, """\
  - id: api
    kind: http_json
    granularity: daily
    url: https://agent:pa55word@qlvb.example.gov.vn/api
    auth: {bearer: "env:EGOV_TEST_TOKEN", basic: {username: u, password: "env:EGOV_TEST_TOKEN"}}
    params: {tu: "{period_begin}"}
    series:
      edoc: {items: "$.don_vi[", numerator: $.a, denominator: $.b}
      half: {numerator: $.a}
  - id: api2
    kind: http_json
    granularity: daily
    url: https://qlvb.example.gov.vn/api
    auth: {bearer: the-token-itself}
    series:
      x: {value: $.v, numerator: $.n, denominator: $.d}
  - id: api3
    kind: http_json
    granularity: daily
    url: https://qlvb.example.gov.vn/api
    interval: 1m
    timeout: 2m
    series:
      x: {value: $.v}
""", "  []\n")
    text = "\n".join(found)
    assert "sources[0].url: credentials do not belong in the URL" in text
    assert "pa55word" not in text and "the-token-itself" not in text
    assert "sources[0].auth: give exactly one of bearer, basic, header" in text
    assert "sources[0].params.tu: unknown placeholder {period_begin}" in text
    assert "sources[0].series.edoc.items: invalid JSONPath '$.don_vi['" in text
    assert "sources[0].series.half: give numerator and denominator (a ratio), or value" in text
    assert "sources[1].auth.bearer: must be a secret reference (env:NAME or file:/path), not a literal value" in text
    assert "sources[1].series.x: give value, or numerator and denominator, not both" in text
    assert "sources[2]: timeout (120s) is longer than the interval (60s)" in text
    assert all("province.yml:" in line for line in found)


def test_a_period_not_served_cannot_be_a_headline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EGOV_TEST_TOKEN", "x")
    body = province(tmp_path, GOOD_SOURCE, kpi("m", "{kind: ratio, source: qlvb, series: edoc, period: month}"),
                    reporting={"periods": ["quarter", "year"]})
    with pytest.raises(ConfigError, match=r"kpis\[0\].measure.period: the month period is not among"):
        load_config(body)


def test_the_agent_refuses_sources_outside_the_probe_allowlist(tmp_path: Path, monkeypatch) -> None:
    """Province URLs and DSNs are validated, never contacted from a test machine."""
    from agent.app.runtime import Agent, ProbeNotAllowed

    monkeypatch.setenv("EGOV_TEST_TOKEN", "x")
    path = province(tmp_path, GOOD_SOURCE + """\
  - id: db
    kind: sql
    granularity: daily
    url: postgresql+psycopg://ro@10.24.10.13:5432/dvc
    series:
      s: {query: "SELECT 1 AS n, 2 AS d", numerator: n, denominator: d}
""", "  []\n")
    with pytest.raises(ProbeNotAllowed) as caught:
        Agent(load_config(path))
    assert "source qlvb: host names are not allowed" in str(caught.value)
    assert "source db: address 10.24.10.13 is outside" in str(caught.value)


def test_a_reload_keeps_an_unchanged_source_and_its_values(tmp_path: Path, monkeypatch) -> None:
    from agent.engine.units import UnitIndex
    from agent.sources.runner import Snapshot, SourceRunner

    monkeypatch.setenv("EGOV_TEST_TOKEN", "x")
    path = province(tmp_path, GOOD_SOURCE, "  []\n")
    loaded = load_config(path)
    units = set(UnitIndex(loaded.config).units)
    first = SourceRunner.from_config(loaded, units)
    first.states["qlvb"].snapshot = Snapshot({}, 1.0)
    again = SourceRunner.from_config(load_config(path), units, first)
    assert again.states["qlvb"] is first.states["qlvb"]
    path.write_text(path.read_text().replace("https://qlvb.example.gov.vn/api", "https://qlvb2.example.gov.vn/api"))
    changed = SourceRunner.from_config(load_config(path), units, again)
    assert changed.states["qlvb"] is not first.states["qlvb"] and changed.states["qlvb"].snapshot is None
