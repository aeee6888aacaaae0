"""Each KPI family computes what its plan sentence means: numerators and denominators written out by hand.

Small provinces and real peers (TCP listeners on loopback, SQLite databases, files): the numbers in
the asserts are counted here from the data the test made, never recomputed by the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.exposition import parse_samples, sample
from support.paths import REPO
from support.province import write_config
from support.sources import UNITS, exposition, fetch

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.config.yamlsource import ConfigError
from agent.domain.periods import ReportingSpec, current_periods
from agent.engine.member_clock import MAX_GAP, MemberClock

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def listener():
    """A TCP port that accepts (an 'up' link); a closed port next to it is 'down'."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            yield server.getsockname()[1], closed.getsockname()[1]


def collect(path: Path) -> tuple[dict, list]:
    agent = Agent(load_config(path))
    asyncio.run(agent.collect_once())
    body, _ = agent.exposition.render(None)
    return parse_samples(body.decode()), agent.engine.evaluate(agent.states())


# --- coverage over the plan's inventory -----------------------------------------------------------

AGENCIES = """\
collectors:
  tcp: {{interval: 30s, timeout: 2s, jitter: 10%}}
inventories:
  # «22 sở, ngành, 10 UBND cấp huyện, 230 xã» in small: 1 department, 2 districts, 3 communes.
  - {{id: agencies, title_vi: Cơ quan, title_en: Agencies, levels: [department, district, commune], expected: 6}}
targets:
  - {{id: s1-link, unit: s1, collector: tcp, tags: [wan_link], params: {{host: 127.0.0.1, port: {up}}}}}
  - {{id: d1-link, unit: d1, collector: tcp, tags: [wan_link], params: {{host: 127.0.0.1, port: {up}}}}}
  - {{id: c1-link, unit: c1, collector: tcp, tags: [wan_link], params: {{host: 127.0.0.1, port: {up}}}}}
  - {{id: c1-snmp, unit: c1, collector: tcp, tags: [wan_link], params: {{host: 127.0.0.1, port: {up}}}}}
  - {{id: c2-link, unit: c2, collector: tcp, tags: [wan_link], params: {{host: 127.0.0.1, port: {down}}}}}
  # d2 and c3 have no router configured yet: they count against the KPI, not out of it.
kpis:
  - id: agencies_connected
    class: direct
    title_vi: Cơ quan kết nối WAN
    title_en: Agencies on the WAN
    measure: {{kind: coverage, select: {{tags: [wan_link]}}, inventory: agencies, unit_up: all, group_by: district}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: "=", value: 100%, origin: ops}}]
  - id: probes_up
    class: direct
    title_vi: Mục tiêu hoạt động
    title_en: Targets up
    measure: {{kind: coverage, select: {{tags: [wan_link]}}}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 90%, origin: ops}}]
"""


def test_agency_coverage_counts_agencies_not_probes(tmp_path: Path, listener) -> None:
    up, down = listener
    samples, _ = collect(write_config(tmp_path / "p.yml", UNITS + AGENCIES.format(up=up, down=down)))
    # Agencies: s1 up, d1 up, c1 up (both its targets), c2 down, d2 and c3 without data -> 3 of 6.
    assert sample(samples, "egov_kpi_numerator", kpi="agencies_connected") == 3
    assert sample(samples, "egov_kpi_denominator", kpi="agencies_connected") == 6
    # The same probes counted as probes: 4 of 5 up. This is what the plan sentence does not mean.
    assert (sample(samples, "egov_kpi_numerator", kpi="probes_up"),
            sample(samples, "egov_kpi_denominator", kpi="probes_up")) == (4, 5)
    # Per district: d1 has d1 (up), c1 (up), c2 (down) -> 2/3; d2 has d2 and c3, both without data -> 0/2.
    assert sample(samples, "egov_kpi_group_numerator", kpi="agencies_connected", group="d1") == 2
    assert sample(samples, "egov_kpi_group_denominator", kpi="agencies_connected", group="d1") == 3
    assert sample(samples, "egov_kpi_group_numerator", kpi="agencies_connected", group="d2") == 0
    assert sample(samples, "egov_kpi_group_denominator", kpi="agencies_connected", group="d2") == 2
    # Every member of the inventory is a series of its own, the ones without data included.
    assert sample(samples, "egov_kpi_member_up", kpi="agencies_connected", unit="c3") == 0
    assert sample(samples, "egov_kpi_member_up", kpi="agencies_connected", unit="c1") == 1


def test_an_inventory_must_match_the_plans_count(tmp_path: Path, listener) -> None:
    up, down = listener
    text = UNITS + AGENCIES.format(up=up, down=down).replace("expected: 6", "expected: 262")
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path / "p.yml", text))
    assert "the inventory has 6 units, the plan counts 262" in str(caught.value)


def test_an_exclusion_the_plan_states_leaves_the_denominator(tmp_path: Path, listener) -> None:
    """«19/20 Sở, ngành ... (thanh tra tỉnh không có thủ tục hành chính)»: the excluded unit is out of both sides."""
    up, down = listener
    text = UNITS + AGENCIES.format(up=up, down=down).replace(
        "levels: [department, district, commune], expected: 6}",
        "levels: [department, district, commune], expected: 5,\n"
        "     exclude: [{unit: c2, reason: không có thủ tục hành chính}]}")
    samples, _ = collect(write_config(tmp_path / "p.yml", text))
    # c2 (down) is excluded: s1, d1, c1 up of s1, d1, d2, c1, c3 -> 3 of 5.
    assert (sample(samples, "egov_kpi_numerator", kpi="agencies_connected"),
            sample(samples, "egov_kpi_denominator", kpi="agencies_connected")) == (3, 5)


INCOMPLETE = """\
collectors:
  tcp: {{interval: 30s, timeout: 2s}}
inventories:
  - id: health_stations
    title_vi: Trạm y tế xã
    title_en: Commune health stations
    levels: [commune]
    complete: false
    incomplete_reason: the plan counts no communes; the list is a placeholder
targets:
  - {{id: c1-station, unit: c1, collector: tcp, tags: [health], params: {{host: 127.0.0.1, port: {up}}}}}
  - {{id: c2-station, unit: c2, collector: tcp, tags: [health], params: {{host: 127.0.0.1, port: {up}}}}}
kpis:
  - id: health_stations_online
    class: direct
    title_vi: Trạm y tế xã kết nối Internet
    title_en: Commune health stations online
    measure: {{kind: coverage, select: {{tags: [health]}}, inventory: health_stations}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: "=", value: 100%, origin: ops}}]
"""


def test_an_incomplete_inventory_leaves_the_kpi_pending_not_met_on_examples(tmp_path: Path, listener) -> None:
    up, _ = listener
    path = write_config(tmp_path / "p.yml", UNITS + INCOMPLETE.format(up=up))
    samples, _ = collect(path)
    # Both example stations answer, yet 2/2 is not the plan's «100% trạm y tế xã»: no value, no verdict.
    assert sample(samples, "egov_kpi_pending", kpi="health_stations_online") == 1
    assert ("egov_kpi_pending", (("kpi", "health_stations_online"), ("province", "t"),
                                 ("reason", "inventory_incomplete"))) in samples
    assert not [k for k in samples if k[0] in ("egov_kpi_value", "egov_kpi_target_met")
                and ("kpi", "health_stations_online") in k[1]]
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "agent.app.cli", "check-config", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stdout and "health_stations_online stays pending" in done.stdout


# --- coverage read from a source: a yes/no per unit of the inventory --------------------------------

ONE_STOP = """\
inventories:
  # «Nâng cấp ... một cửa điện tử tại ... 230 xã»: here the 3 communes.
  - {{id: communes, title_vi: Xã, title_en: Communes, levels: [commune], expected: 3}}
sources:
  - id: mot_cua
    kind: sql
    granularity: daily
    url: sqlite:///{db}
    interval: 1h
    series:
      unified: {{query: "SELECT ma_don_vi, MAX(thong_nhat) AS da FROM mot_cua GROUP BY ma_don_vi",
                 unit: ma_don_vi, value: da}}
kpis:
  - id: one_stop_unified_communes
    class: from_system
    title_vi: Xã dùng một cửa thống nhất
    title_en: Communes on the unified one-stop system
    measure: {{kind: coverage, inventory: communes, source: mot_cua, series: unified}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: "=", value: 100%, origin: ops}}]
"""


def test_units_missing_from_the_systems_table_count_as_no(tmp_path: Path) -> None:
    db = tmp_path / "mot_cua.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE mot_cua (ma_don_vi TEXT, thong_nhat INTEGER)")
        # c1 yes, c2 no, c3 absent from the table; p (the province) is not in the inventory.
        con.executemany("INSERT INTO mot_cua VALUES (?, ?)", [("c1", 1), ("c2", 0), ("p", 1)])
    samples = exposition(write_config(tmp_path / "p.yml", UNITS + ONE_STOP.format(db=db)))
    # Yes: c1 -> 1 of the 3 communes (not 1 of the 2 the table lists, nor 2 of its 3 rows).
    assert (sample(samples, "egov_kpi_numerator", kpi="one_stop_unified_communes"),
            sample(samples, "egov_kpi_denominator", kpi="one_stop_unified_communes")) == (1, 3)


# --- source ratios over the plan's own periods ------------------------------------------------------

DOCUMENTS = """\
sources:
  - id: qlvb
    kind: sql
    granularity: event
    url: sqlite:///{db}
    interval: 1h
    series:
      exchange:
        query: |
          SELECT ma_don_vi, SUM(dien_tu) AS dt, COUNT(*) AS tong FROM van_ban
          WHERE ngay >= :period_start AND ngay < :period_end GROUP BY ma_don_vi
        unit: ma_don_vi
        numerator: dt
        denominator: tong
kpis:
  - id: edoc_quarter
    class: from_system
    title_vi: Văn bản điện tử (quý)
    title_en: Electronic documents (quarter)
    measure: {{kind: ratio, source: qlvb, series: exchange, period: quarter}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 90%, origin: ops}}]
"""


def at(day: str, hour: int = 12) -> float:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), TZ).timestamp()


def test_documents_of_the_9th_and_the_10th_fall_in_different_quarters(tmp_path: Path) -> None:
    """59/KH-UBND §4.1: «quý I từ ngày 10/12 năm trước tới ngày 09/3; quý II từ ngày 10/3 ...»."""
    db = tmp_path / "qlvb.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE van_ban (ma_don_vi TEXT, ngay TEXT, dien_tu INTEGER)")
        con.executemany("INSERT INTO van_ban VALUES (?, ?, ?)", [
            ("s1", "2025-12-09", 1),  # Q4 of 2025: before Q1 2026 began
            ("s1", "2025-12-10", 1), ("s1", "2026-03-09", 0), ("s1", "2026-03-09", 1),  # Q1 2026: 3 documents
            ("s1", "2026-03-10", 1), ("c1", "2026-03-10", 0),  # Q2 2026 from its first day
        ])
    loaded = load_config(write_config(tmp_path / "p.yml", UNITS + DOCUMENTS.format(db=db)))
    runner = fetch(loaded)

    async def quarter_on(day: str) -> tuple[str, float, float]:
        await runner.fetch("qlvb", now=at(day))
        _, snapshot = runner.snapshot("qlvb")
        period, records = snapshot.data["exchange"]["quarter"]
        return period.name, sum(r.numerator for r in records), sum(r.denominator for r in records)

    async def main() -> list[tuple[str, float, float]]:
        try:
            return [await quarter_on("2026-03-09"), await quarter_on("2026-03-10")]
        finally:
            await runner.close()
    q1, q2 = asyncio.run(main())
    assert q1 == ("2026-Q1", 2, 3)  # 10/12/2025, 9/3 (paper), 9/3 (electronic)
    assert q2 == ("2026-Q2", 1, 2)  # 10/3: one electronic of two


MONTHLY = """\
sources:
  - id: reports
    kind: file_drop
    granularity: monthly
    folder: reports
    columns: {{unit: ma_don_vi, date: ky}}
    interval: 1h
    series:
      files: {{numerator: tren_mang, denominator: tong}}
{extra}kpis:
  - id: work_files
    class: from_system
    title_vi: Hồ sơ công việc trên mạng
    title_en: Work files online
    measure: {{kind: ratio, source: reports, series: files, period: quarter}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 80%, origin: ops}}]
"""


def test_monthly_figures_cannot_be_cut_at_the_10th_unless_marked_approximate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path / "p.yml", UNITS + MONTHLY.format(extra="")))
    assert "sources[0].granularity: monthly figures cannot be cut at the boundaries of the quarter" in \
        str(caught.value)
    (tmp_path / "reports").mkdir()
    quarter = current_periods(ReportingSpec(quarter_start_month=12, quarter_start_day=10), "Asia/Ho_Chi_Minh")
    # The month after the quarter's first day: most of its days (its 15th) lie in this quarter.
    month = (quarter["quarter"].start + dt.timedelta(days=30)).replace(day=1)
    # The month before the quarter's first month: all of it lies in the quarter before.
    before = (quarter["quarter"].start.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    (tmp_path / "reports" / "r.csv").write_text(
        f"ma_don_vi,ky,tren_mang,tong\ns1,{month:%Y-%m},8,10\nc1,{before:%Y-%m},1,10\n")
    path = write_config(tmp_path / "p.yml", UNITS + MONTHLY.format(extra="").replace(
        "granularity: monthly", "granularity: monthly\n    approximate_periods: true"))
    samples = exposition(path)
    # s1's month lands in the quarter holding most of its days (8/10), c1's in the one before; every
    # series of the quarter says it is approximate. Calendar months and years stay exact.
    assert sample(samples, "egov_kpi_value_approximate", kpi="work_files") == 1
    assert sample(samples, "egov_kpi_period_value", kpi="work_files", period="quarter", approximate="true") == 0.8
    assert [k for k in samples if k[0] == "egov_kpi_period_value" and ("period", "year") in k[1]
            and ("approximate", "false") in k[1]]


# --- manual figures: example rows are never figures -----------------------------------------------

MANUAL = """\
manual: {{file: manual.csv}}
kpis:
  - id: tax_online
    class: manual
    title_vi: Khai thuế qua mạng
    title_en: Tax returns online
    measure: {{kind: ratio, source: manual}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: ">", value: 90%, origin: ops}}]
  - id: satisfaction
    class: manual
    title_vi: Hài lòng
    title_en: Satisfaction
    measure: {{kind: ratio, source: manual}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 90%, origin: ops}}]
"""


def test_example_rows_are_never_shown_as_figures(tmp_path: Path) -> None:
    (tmp_path / "manual.csv").write_text(
        "kpi,date,source,value,numerator,denominator,note,example\n"
        "tax_online,2026-09-30,VÍ DỤ - Cục Thuế,,11840,12200,example,\n"       # 97% of invented returns
        "satisfaction,2026-06-30,VÍ DỤ,95%,,,,yes\n"                           # flagged in the example column
        "satisfaction,2026-03-31,Khảo sát SIPAS 2025,,870,1000,,\n",           # the real figure, older
        encoding="utf-8")
    samples = exposition(write_config(tmp_path / "p.yml", UNITS + MANUAL.format()))
    # tax_online: only an example -> pending, not "met at 97%".
    assert ("egov_kpi_pending", (("kpi", "tax_online"), ("province", "t"), ("reason", "example_data_only"))) \
        in samples
    assert not [k for k in samples if k[0] == "egov_kpi_target_met" and ("kpi", "tax_online") in k[1]]
    # satisfaction: the real row wins over the newer example: 870/1000 = 87% < 90%, not met.
    assert (sample(samples, "egov_kpi_numerator", kpi="satisfaction"),
            sample(samples, "egov_kpi_denominator", kpi="satisfaction")) == (870, 1000)
    assert sample(samples, "egov_kpi_target_met", kpi="satisfaction") == 0


# --- the configuration keeps class, source and numbers honest ---------------------------------------

def test_class_must_agree_with_where_the_measure_reads(tmp_path: Path) -> None:
    text = UNITS + MANUAL.format().replace("    class: manual\n    title_vi: Khai",
                                           "    class: from_system\n    title_vi: Khai")
    (tmp_path / "manual.csv").write_text("kpi,date,source,value\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path / "p.yml", text))
    assert ("kpis[0].class: class from_system reads an application system, but the measure reads the manual "
            "data file (source: manual)") in str(caught.value)


def test_a_ratio_target_lies_between_0_and_100_percent(tmp_path: Path) -> None:
    (tmp_path / "manual.csv").write_text("kpi,date,source,value\n", encoding="utf-8")
    for bad, shown in (("150%", "150%"), ("-5%", "-5%")):
        text = UNITS + MANUAL.format().replace('comparator: ">", value: 90%', f'comparator: ">", value: {bad}')
        with pytest.raises(ConfigError) as caught:
            load_config(write_config(tmp_path / "p.yml", text))
        assert f"a ratio lies between 0% and 100%, got {shown}" in str(caught.value)


# --- the period form's counters -------------------------------------------------------------------

def test_member_clock_credits_time_to_the_state_seen_and_skips_gaps() -> None:
    clock = MemberClock()
    clock.observe("k", [("c1", True)], 1000.0)
    clock.observe("k", [("c1", False)], 1010.0)   # 10 s up
    clock.observe("k", [("c1", True)], 1015.0)    # 5 s down
    clock.observe("k", [("c1", True)], 1015.0 + MAX_GAP + 1)  # the agent stalled: neither up nor observed
    clock.observe("k", [("c1", True)], 1015.0 + MAX_GAP + 21)  # 20 s up
    spent = clock.snapshot()[("k", "c1")]
    assert (spent.up_seconds, spent.observed_seconds) == (30.0, 35.0)
