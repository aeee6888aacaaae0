"""http_json sources against a real HTTP JSON API on loopback that demands credentials."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.exposition import parse_samples, sample
from support.sources import Api, exposition, fetch, fetch_elsewhere, kpi, province

from agent.config.loading import load_config
from agent.domain.periods import ReportingSpec, current_periods

TOKEN = "s3cret-token-for-the-test"
BG = ReportingSpec(quarter_start_month=12, quarter_start_day=10)
# Per unit: (documents sent electronically, all documents sent) in one month.
MONTHLY = {"s1": (90, 100), "d1": (45, 50), "c1": (10, 20), "c2": (15, 20), "c3": (8, 10)}
SCALE = {"month": 1, "quarter": 3, "year": 12}


def periods() -> dict:
    return current_periods(BG, "Asia/Ho_Chi_Minh")


def qlvb_body(query: dict[str, str]) -> dict:
    """Figures scaled by the period asked for, so a test can tell which period a value came from."""
    kind = next(k for k, p in periods().items() if p.start.isoformat() == query.get("tu_ngay"))
    assert query["den_ngay"] == periods()[kind].last_day.isoformat()
    n = SCALE[kind]
    return {"don_vi": [{"ma_don_vi": u, "van_ban_di_dien_tu": e * n, "van_ban_di": a * n}
                       for u, (e, a) in MONTHLY.items()]}


SOURCE = """\
  - id: qlvb
    kind: http_json
    granularity: daily
    url: {base}/api/thong-ke
    auth: {{bearer: "env:{env}"}}
    params: {{tu_ngay: "{{period_start}}", den_ngay: "{{period_last_day}}"}}
    interval: {interval}
    timeout: {timeout}
    stale_after: {stale}
    series:
      edoc: {{items: "$.don_vi[*]", unit: $.ma_don_vi, numerator: $.van_ban_di_dien_tu, denominator: $.van_ban_di}}
"""
KPIS = (kpi("edoc_all", "{kind: ratio, source: qlvb, series: edoc, group_by: district}")
        + kpi("edoc_commune", "{kind: ratio, source: qlvb, series: edoc, levels: [commune], period: quarter}"))


@pytest.fixture
def api():
    server = Api(TOKEN)
    server.bodies["/api/thong-ke"] = qlvb_body
    yield server
    server.close()


def config(tmp_path: Path, api: Api, monkeypatch, env: str = "EGOV_TEST_QLVB_TOKEN", interval: str = "10m",
           stale: str = "1h") -> Path:
    monkeypatch.setenv("EGOV_TEST_QLVB_TOKEN", TOKEN)
    monkeypatch.setenv("EGOV_TEST_WRONG_TOKEN", "not-the-token")
    timeout = "1s" if interval == "1s" else "5s"
    return province(tmp_path, SOURCE.format(base=api.base, env=env, interval=interval, timeout=timeout, stale=stale),
                    KPIS)


def test_kpis_per_period_level_and_district_through_the_agent(tmp_path: Path, api: Api, monkeypatch) -> None:
    samples = exposition(config(tmp_path, api, monkeypatch))
    electronic = sum(e for e, _ in MONTHLY.values())
    total = sum(a for _, a in MONTHLY.values())
    # Headline: the reporting year to date (from 10 December).
    assert sample(samples, "egov_kpi_numerator", kpi="edoc_all") == electronic * 12
    assert sample(samples, "egov_kpi_denominator", kpi="edoc_all") == total * 12
    assert sample(samples, "egov_kpi_value", kpi="edoc_all") == pytest.approx(electronic / total)
    p = periods()
    for kind, period in p.items():
        labels = {"kpi": "edoc_all", "period": kind, "period_start": period.start.isoformat()}
        assert sample(samples, "egov_kpi_period_numerator", **labels) == electronic * SCALE[kind]
        assert sample(samples, "egov_kpi_period_denominator", **labels) == total * SCALE[kind]
        assert sample(samples, "egov_reporting_period_start_timestamp_seconds", period=kind) == \
            period.start_timestamp("Asia/Ho_Chi_Minh")
    # Commune level only, headline = the current (10th-to-9th) quarter.
    assert sample(samples, "egov_kpi_numerator", kpi="edoc_commune") == (10 + 15 + 8) * 3
    assert sample(samples, "egov_kpi_denominator", kpi="edoc_commune") == (20 + 20 + 10) * 3
    # Per district: the district's own documents and its communes'.
    assert sample(samples, "egov_kpi_group_value", kpi="edoc_all", group="d1") == pytest.approx(70 / 90)
    assert sample(samples, "egov_kpi_group_value", kpi="edoc_all", group="d2") == pytest.approx(8 / 10)
    assert sample(samples, "egov_source_up", source="qlvb", kind="http_json") == 1
    assert sample(samples, "egov_kpi_stale", kpi="edoc_all") == 0
    # One request per period, each with that period's bounds and the token.
    asked = {(q["tu_ngay"], q["den_ngay"]) for _, q, _ in api.requests}
    assert asked == {(x.start.isoformat(), x.last_day.isoformat()) for x in p.values()}
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in api.requests)


@pytest.mark.parametrize("env", ["EGOV_TEST_WRONG_TOKEN", None])
def test_a_refused_token_is_a_labelled_auth_error(tmp_path: Path, api: Api, monkeypatch, env, caplog) -> None:
    path = config(tmp_path, api, monkeypatch, env=env or "EGOV_TEST_QLVB_TOKEN")
    if env is None:  # no credentials at all
        text = path.read_text().replace('    auth: {bearer: "env:EGOV_TEST_QLVB_TOKEN"}\n', "")
        path.write_text(text)
    runner = fetch(load_config(path))
    state = runner.states["qlvb"]
    assert state.snapshot is None and not state.up
    assert dict(state.errors) == {"auth": 1}
    assert "HTTP 401" in caplog.text
    assert TOKEN not in caplog.text and "not-the-token" not in caplog.text


@pytest.mark.parametrize(("body", "reason", "message"), [
    (b"<html>maintenance</html>", "bad_body", "the body is not JSON"),
    ({"don_vi": [{"ma_don_vi": "s1", "van_ban_di_dien_tu": 1, "van_ban_di": 2},
                 {"ma_don_vi": "d1", "van_ban_di_dien_tu": 1}]}, "missing_field", "$.don_vi[1].van_ban_di: missing"),
    ({"don_vi": [{"ma_don_vi": "s1", "van_ban_di_dien_tu": "n/a", "van_ban_di": 2}]}, "wrong_type",
     "$.don_vi[0]: $.van_ban_di_dien_tu: expected a number, got 'n/a'"),
    ({"result": []}, "missing_field", "$.don_vi[*]: missing"),
    ({"don_vi": [{"ma_don_vi": "s1", "van_ban_di_dien_tu": 5, "van_ban_di": 2}]}, "wrong_type", "exceeds"),
    # Hostile bodies: the C decoder recurses once per level, and Python refuses integers past 4,300 digits.
    (b"[" * 1_000_000, "bad_body", "nested too deep"),
    (b'{"don_vi": [{"ma_don_vi": "s1", "van_ban_di_dien_tu": ' + b"9" * 5000 + b"}]}", "bad_body",
     "the body is not JSON"),
])
def test_a_bad_body_keeps_the_previous_values(tmp_path: Path, api: Api, monkeypatch, caplog, body, reason,
                                              message) -> None:
    loaded = load_config(config(tmp_path, api, monkeypatch))
    calls = {"n": 0}

    def first_good_then_bad(query: dict[str, str]):
        calls["n"] += 1
        return qlvb_body(query) if calls["n"] <= 3 else body  # three periods per fetch
    api.bodies["/api/thong-ke"] = first_good_then_bad
    runner = fetch(loaded, times=2)
    state = runner.states["qlvb"]
    assert dict(state.errors) == {reason: 1} and not state.up
    assert message in caplog.text
    # The first fetch's figures are still there.
    _, snapshot = runner.snapshot("qlvb")
    records = snapshot.data["edoc"]["year"][1]
    assert sum(r.numerator for r in records) == sum(e for e, _ in MONTHLY.values()) * 12


def test_basic_auth_and_an_empty_period(tmp_path: Path, monkeypatch) -> None:
    server = Api(basic=("egov-agent", "basic-pass-123"))
    server.bodies["/hs"] = lambda q: {"data": {"items": []}} if q["from"] != periods()["year"].start.isoformat() \
        else {"data": {"items": [{"unitCode": "c1", "viaOneStop": 9, "resolved": 10}]}}
    monkeypatch.setenv("EGOV_TEST_BASIC", "basic-pass-123")
    try:
        path = province(tmp_path, f"""\
  - id: motcua
    kind: http_json
    granularity: daily
    url: {server.base}/hs
    auth: {{basic: {{username: egov-agent, password: "env:EGOV_TEST_BASIC"}}}}
    params: {{from: "{{period_start}}", to: "{{period_end}}"}}
    series:
      one_stop: {{items: "$.data.items[*]", unit: $.unitCode, numerator: $.viaOneStop, denominator: $.resolved}}
""", kpi("one_stop", "{kind: ratio, source: motcua, series: one_stop}")
           + kpi("one_stop_month", "{kind: ratio, source: motcua, series: one_stop, period: month}"))
        samples = exposition(path)
    finally:
        server.close()
    assert sample(samples, "egov_kpi_value", kpi="one_stop") == pytest.approx(0.9)
    # An empty month is no value (nothing reported yet), not 0 %.
    assert not [k for k in samples if k[0] == "egov_kpi_value" and ("kpi", "one_stop_month") in k[1]]
    month = periods()["month"].start.isoformat()
    assert sample(samples, "egov_kpi_period_denominator", kpi="one_stop_month", period="month",
                  period_start=month) == 0


def test_the_running_agent_keeps_values_then_flags_them_stale(tmp_path: Path, api: Api, monkeypatch,
                                                              start_agent) -> None:
    """egov-agent run as a child process: the API starts refusing the token (rotated on the server);
    the KPI keeps its last value, the source reports auth errors, and after stale_after the KPI is stale."""
    agent = start_agent(config(tmp_path, api, monkeypatch, interval="1s", stale="2s"))
    deadline = time.monotonic() + 10
    while True:
        samples = parse_samples(agent.metrics())
        if any(k[0] == "egov_kpi_value" and ("kpi", "edoc_all") in k[1] for k in samples):
            break
        assert time.monotonic() < deadline, "no KPI value within 10 s"
        time.sleep(0.2)
    value = sample(samples, "egov_kpi_value", kpi="edoc_all")
    api.token = "rotated-on-the-server"
    deadline = time.monotonic() + 15
    while True:
        samples = parse_samples(agent.metrics())
        errors = [v for (n, ls), v in samples.items() if n == "egov_source_errors_total" and ("reason", "auth") in ls]
        if errors and sample(samples, "egov_kpi_stale", kpi="edoc_all") == 1:
            break
        assert time.monotonic() < deadline, "the KPI did not turn stale within 15 s"
        time.sleep(0.3)
    assert sample(samples, "egov_kpi_value", kpi="edoc_all") == value
    assert sample(samples, "egov_source_up", source="qlvb") == 0
    assert sample(samples, "egov_source_stale", source="qlvb") == 1
    text = agent.metrics()
    agent.stop()
    log = agent.log.read_text()
    assert "fetch failed (auth)" in log
    assert TOKEN not in log and TOKEN not in text


def test_the_fetch_runs_in_a_child_so_httpx_never_enters_the_agent(tmp_path: Path, api: Api, monkeypatch) -> None:
    """The agent's side of a good fetch: the records arrive (numerator 168 × 12 months for the year, by
    hand from MONTHLY), while httpx, anyio and httpcore were imported only by the child that made the GETs."""
    path = config(tmp_path, api, monkeypatch)
    up, total, held = fetch_elsewhere(path, "qlvb", "edoc", {"httpx", "httpcore", "anyio"})
    assert (up, total, held) == (True, (90 + 45 + 10 + 15 + 8) * 12, [])
    assert len(api.requests) == 3  # one GET per period, made by the child


def test_an_api_that_never_answers_is_a_timeout_and_the_child_is_gone(tmp_path: Path, api: Api,
                                                                       monkeypatch) -> None:
    """The second fetch meets an API that holds the request open: the fetch fails as ``timeout`` within the
    source's 1 s (plus the child's grace), the first fetch's values are kept, and no fetch process is left."""
    import asyncio

    import psutil

    answered = {"n": 0}

    def first_then_hang(query: dict[str, str]):
        answered["n"] += 1
        if answered["n"] > 3:  # three periods per fetch
            time.sleep(30)
        return qlvb_body(query)

    api.bodies["/api/thong-ke"] = first_then_hang
    loaded = load_config(config(tmp_path, api, monkeypatch, interval="1s"))
    runner = fetch(loaded)
    _, before = runner.snapshot("qlvb")
    started = time.monotonic()
    assert asyncio.run(runner.fetch("qlvb")) is False
    waited = time.monotonic() - started
    assert waited < 1 + 2.0 + 1.5, waited  # the timeout, the child's grace, a slow machine's start
    state = runner.states["qlvb"]
    assert state.last_error == "timeout" and dict(state.errors) == {"timeout": 1}
    _, kept = runner.snapshot("qlvb")
    assert kept.data == before.data
    deadline = time.monotonic() + 5
    while any("agent.sources.child" in " ".join(c.cmdline()) for c in psutil.Process().children(recursive=True)):
        assert time.monotonic() < deadline, "the fetch process outlived its fetch"
        time.sleep(0.1)


def test_sources_first_fetch_after_the_first_round_is_ready(tmp_path: Path, api: Api, monkeypatch,
                                                           start_agent) -> None:
    """A source fetching every second and an ICMP target whose first probe takes its 5 echoes 0.5 s apart:
    the fetch's child (~0.4 s of CPU) waits until the first round is ready, so it never takes the cores
    from the probes that decide up and down."""
    from support.province import write_config
    from support.sources import units

    monkeypatch.setenv("EGOV_TEST_QLVB_TOKEN", TOKEN)
    head = (units().collector("icmp", interval="30s", timeout="3s")
            .target("r1", "c1", "icmp", params={"host": "127.0.0.1"}))
    path = write_config(tmp_path / "province.yml", head.yaml() + "sources:\n" + SOURCE.format(
        base=api.base, env="EGOV_TEST_QLVB_TOKEN", interval="1s", timeout="1s", stale="1h") + "kpis:\n" + KPIS)
    agent = start_agent(path)  # returns at /-/ready (polled every 0.1 s): the child needs ~0.3 s to start
    assert api.requests == []
    deadline = time.monotonic() + 15
    while "source qlvb" not in agent.log.read_text():  # "fetched" (or why not), logged once the fetch ends
        assert time.monotonic() < deadline, "no fetch within 15 s"
        time.sleep(0.1)
    agent.stop()
    log = agent.log.read_text()
    assert api.requests and log.index("first collection round started") < log.index("source qlvb"), log
