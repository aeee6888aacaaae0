"""The quarterly report, end to end: a quarter and more of history with known outages backfilled into a
real Prometheus (promtool tsdb create-blocks-from openmetrics) and a real VictoriaMetrics (its import
API), the report made by the real command from each, and read back from docx, xlsx and PDF.

The figures are computed here by hand from the generated outages, on Bắc Giang's calendar (59/KH-UBND
§4.1: quarter III of 2026 runs 10/06/2026 – 09/09/2026; data close on the 9th).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from support.paths import AGENT, REPO
from support.realstack import Prometheus, VictoriaMetrics
from support.report_history import History, Outage, down_seconds, local

from agent.config.loading import load_config
from agent.config.schema import CoverageMeasure
from agent.engine.kpi import KpiEngine
from agent.engine.units import UnitIndex

PROVINCE = REPO / "config" / "provinces" / "bac-giang.yml"
TZ = "Asia/Ho_Chi_Minh"
COVERAGE = "wan_commune_coverage_2020"
AVAILABILITY = "portals_availability_30d"
EDOC = "edoc_exchange_signed_2030"
EDOC_KH59 = "edoc_exchange_rate_2020_kh59"
PORTAL = "portal-noi-vu"
STEP = 900.0  # a sample every 15 minutes keeps a quarter of 500 series quick to backfill
Q3 = (local("2026-06-10", TZ), local("2026-09-10", TZ))  # 10/06 00:00 to 10/09 00:00: 92 days
DAY = 86400.0
# Three communes down two days each (bg-sd-04 across the 9th/10th cut-off: one day in each quarter),
# one down six days (below the 95% "connected" threshold over 92 days), a portal down six hours.
OUTAGES = [
    Outage("bg-hh-01", local("2026-07-01", TZ), local("2026-07-03", TZ)),
    Outage("bg-hh-02", local("2026-08-10", TZ, 8), local("2026-08-12", TZ, 8)),
    Outage("bg-sd-04", local("2026-09-09", TZ), local("2026-09-11", TZ)),
    Outage("bg-lg-03", local("2026-07-20", TZ), local("2026-07-26", TZ)),
    Outage(PORTAL, local("2026-08-20", TZ, 9), local("2026-08-20", TZ, 15)),
]
RESET = local("2026-08-01", TZ, 5) + 420  # the agent restarted: every counter began again from 0


def history() -> tuple[History, list[str], list[str]]:
    loaded = load_config(PROVINCE, resolve_secrets=False)
    config = loaded.config
    units = UnitIndex(config)
    engine = KpiEngine(config, units, None)
    kpi = next(k for k in config.kpis if k.id == COVERAGE)
    assert isinstance(kpi.measure, CoverageMeasure)
    inventory = engine.inventory_of(kpi.measure)
    assert inventory is not None and len(inventory.members) == 230
    portal_measure = next(k for k in config.kpis if k.id == AVAILABILITY).measure
    portals = [t.id for t in engine.select(portal_measure.select)]
    assert PORTAL in portals
    h = History("bg", local("2026-06-01", TZ), local("2026-09-15", TZ), STEP, RESET)
    for unit in inventory.members:
        district = units.ancestor_at(unit, "district") or ""
        labels = {"province": "bg", "kpi": COVERAGE, "unit": unit, "district": district}
        h.counters(unit, [("egov_kpi_member_up_seconds_total", labels),
                          ("egov_kpi_member_observed_seconds_total", labels)], OUTAGES, STEP,
                   "egov_kpi_member_up_seconds_total")
        for cut in (local("2026-06-10", TZ), Q3[1]):  # the gauge near each cut-off
            h.gauge("egov_kpi_member_up", labels,
                    [(t, 0.0 if down_seconds(OUTAGES, unit, t - 1, t) else 1.0) for t in h.times(cut - 7200, cut)])
    for target in portals:
        labels = {"province": "bg", "target": target, "collector": "http"}
        h.counters(target, [("egov_target_probes_total", labels), ("egov_target_probe_successes_total", labels)],
                   OUTAGES, STEP / 30, "egov_target_probe_successes_total")  # a probe every 30 s
    # The e-document system's figures per quarter, as the agent exported them while each was current.
    for start, end, num, den in (("2026-03-10", "2026-06-10", 950, 1000), ("2026-06-10", "2026-09-10", 880, 1000),
                                 ("2026-09-10", "2026-09-15", 40, 50)):
        labels = {"province": "bg", "kpi": EDOC, "period": "quarter", "period_start": start, "approximate": "false"}
        times = h.times(local(start, TZ), local(end, TZ) - 1)
        h.gauge("egov_kpi_period_numerator", labels, [(t, float(num)) for t in times])
        h.gauge("egov_kpi_period_denominator", labels, [(t, float(den)) for t in times])
        h.gauge("egov_kpi_period_value", labels, [(t, num / den) for t in times])
    # The 59/KH-UBND e-document rate (≥ 90%, per district, headline period the year): the system's year
    # to date, 175/200, and two districts of it: Hiệp Hòa 80/100 (below), Lạng Giang 95/100 (met).
    year = {"province": "bg", "kpi": EDOC_KH59, "period": "year", "period_start": "2026-01-01",
            "approximate": "false"}
    times = h.times(h.start, h.end)
    h.gauge("egov_kpi_period_numerator", year, [(t, 175.0) for t in times])
    h.gauge("egov_kpi_period_denominator", year, [(t, 200.0) for t in times])
    h.gauge("egov_kpi_period_value", year, [(t, 0.875) for t in times])
    for district, num in (("bg-hh", 80.0), ("bg-lg", 95.0)):
        labels = {"province": "bg", "kpi": EDOC_KH59, "group_level": "district", "group": district}
        h.gauge("egov_kpi_group_numerator", labels, [(t, num) for t in times])
        h.gauge("egov_kpi_group_denominator", labels, [(t, 100.0) for t in times])
    return h, list(inventory.members), portals


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    h, communes, portals = history()
    (tmp / "history.om").parent.mkdir(exist_ok=True)
    h.openmetrics(tmp / "history.om")
    blocks = tmp / "tsdb"
    done = subprocess.run([shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from", "openmetrics",
                           "--max-block-duration=2400h", str(tmp / "history.om"), str(blocks)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp / "history.om").unlink()
    started = []
    try:
        prometheus = Prometheus(tmp, "prometheus", {}, None, data=blocks,
                                extra=["--storage.tsdb.retention.time=100y"])
        started.append(prometheus)
        vm = VictoriaMetrics(tmp)
        started.append(vm)
        vm.import_jsonl(h.jsonl())
        yield {"prometheus": prometheus.url, "victoria-metrics": vm.url}, communes, portals, tmp
    finally:
        for part in reversed(started):
            part.stop()


def report(url: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AGENT, "report", "--config", str(PROVINCE), "--prometheus", url, "-o", str(out), *args],
                          capture_output=True, text=True, timeout=600, cwd=REPO)


def figures(path: Path) -> dict[str, dict]:
    return {f["kpi"]: f for f in json.loads(path.read_text(encoding="utf-8"))["figures"]}


@pytest.mark.parametrize("server", ["prometheus", "victoria-metrics"])
def test_the_quarter_from_history_equals_the_hand_computed_figures(servers, server) -> None:
    urls, communes, portals, tmp = servers
    out = tmp / f"q3-{server}.json"
    done = report(urls[server], out, "--period", "2026-Q3", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert (data["start"], data["last_day"], data["complete"]) == ("2026-06-10", "2026-09-09", True)
    got = figures(out)

    # «kết nối ... đến 100% các xã»: connected communes over the 230 of the inventory. Connected means up
    # at least 95% of the 92 days: bg-lg-03 was up 86/92 = 93.5% (not connected); bg-hh-01 and bg-hh-02
    # 90/92 = 97.8%, bg-sd-04 91/92 (its second day falls in Q4). Numerator 229, denominator 230.
    coverage = got[COVERAGE]
    assert (coverage["numerator"], coverage["denominator"]) == (229, 230)
    assert coverage["value"] == pytest.approx(229 / 230)
    assert coverage["verdict"] == "not_met"  # the plan says 100%
    assert [r["unit"] for r in coverage["below"]] == ["bg-lg-03"]
    tolerance = STEP + 1  # Prometheus extrapolates within each hour; VictoriaMetrics does not
    assert coverage["below"][0]["down_seconds"] == pytest.approx(6 * DAY, abs=tolerance)
    interrupted = {r["unit"]: r["down_seconds"] for r in coverage["interrupted"]}
    assert set(interrupted) == {"bg-hh-01", "bg-hh-02", "bg-sd-04"}
    assert interrupted["bg-hh-01"] == pytest.approx(2 * DAY, abs=tolerance)
    assert interrupted["bg-hh-02"] == pytest.approx(2 * DAY, abs=tolerance)
    assert interrupted["bg-sd-04"] == pytest.approx(1 * DAY, abs=tolerance)  # the 9th only: the 10th is Q4
    # At the cut-off instant (10/09 00:00) bg-sd-04 was down: 229/230 then as well.
    assert (coverage["cutoff_numerator"], coverage["cutoff_denominator"]) == (229, 230)
    lang_giang = next(g for g in coverage["groups"] if g["group"] == "bg-lg")
    in_lang_giang = sum(1 for c in communes if c.startswith("bg-lg-"))
    assert (lang_giang["numerator"], lang_giang["denominator"]) == (in_lang_giang - 1, in_lang_giang)

    # The portals' availability: good probes / all probes. One probe every 30 s of 92 days for each of
    # the portals, less the restart's lost step; portal-noi-vu missed 6 h of them.
    availability = got[AVAILABILITY]
    per_portal = 92 * DAY / 30 - STEP / 30
    expected = (len(portals) * per_portal - 6 * 3600 / 30) / (len(portals) * per_portal)
    assert availability["value"] == pytest.approx(expected, abs=2e-5)
    assert availability["origin"] == "ops"  # an operations objective, reported apart from the plan
    assert availability["interrupted"][0]["unit"] == PORTAL
    assert availability["interrupted"][0]["down_seconds"] == pytest.approx(6 * 3600, abs=tolerance)

    # Electronic documents signed and exchanged (> 95% by 2030): the system's Q3 figures 880/1000, not met;
    # Q2 was 950/1000, so the change is −7 points.
    edoc = got[EDOC]
    assert (edoc["numerator"], edoc["denominator"], edoc["verdict"]) == (880, 1000, "not_met")
    assert edoc["previous_value"] == pytest.approx(0.95)
    assert edoc["change"] == pytest.approx(-0.07)

    # No history, no figure: never a 0. Manual and unprobed KPIs are data gaps with the reason.
    gaps = set(data["summary"]["gaps"])
    assert "thdl_hosted_systems_up" in gaps and got["thdl_hosted_systems_up"]["value"] is None
    assert got["thdl_hosted_systems_up"]["verdict"] == "no_data"
    assert COVERAGE not in gaps and EDOC not in gaps
    assert all(q["expr"] for q in data["queries"])


@pytest.mark.parametrize("server", ["prometheus", "victoria-metrics"])
def test_the_year_to_date_with_a_district_below_target(servers, server) -> None:
    """«Tỷ lệ văn bản trao đổi ... đạt 90%» per district, for the year 2026 to date (the report runs in
    December; the history ends 15/09): 175/200 = 87.5% for the province, Hiệp Hòa 80/100 not met,
    Lạng Giang 95/100 met."""
    urls, _, _, tmp = servers
    out = tmp / f"2026-{server}.json"
    done = report(urls[server], out, "--period", "2026", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert (data["window_kind"], data["start"], data["last_day"]) == ("year", "2026-01-01", "2026-12-31")
    assert data["complete"] is False  # to date
    edoc = figures(out)[EDOC_KH59]
    assert (edoc["numerator"], edoc["denominator"], edoc["verdict"]) == (175, 200, "not_met")
    groups = {g["group"]: (g["numerator"], g["denominator"], g["verdict"]) for g in edoc["groups"]}
    assert groups == {"bg-hh": (80, 100, "not_met"), "bg-lg": (95, 100, "met")}


def test_both_servers_give_the_same_report(servers) -> None:
    _, _, _, tmp = servers
    a, b = (figures(tmp / f"q3-{s}.json") for s in ("prometheus", "victoria-metrics"))
    for kpi, figure in a.items():
        assert (figure["numerator"] is None) == (b[kpi]["numerator"] is None), kpi
        assert figure["verdict"] == b[kpi]["verdict"], kpi
        if figure["value"] is not None:
            assert figure["value"] == pytest.approx(b[kpi]["value"], abs=1e-4), kpi


def test_docx_xlsx_and_pdf_say_the_same_in_vietnamese(servers) -> None:
    urls, _, _, tmp = servers
    from docx import Document
    from openpyxl import load_workbook

    docx = tmp / "q3.docx"
    assert report(urls["prometheus"], docx, "--period", "2026-Q3", "--format", "docx").returncode == 0
    text = "\n".join(p.text for p in Document(str(docx)).paragraphs)
    cells = "\n".join(c.text for t in Document(str(docx)).tables for r in t.rows for c in r.cells)
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in cells and "Độc lập - Tự do - Hạnh phúc" in cells
    assert "BÁO CÁO" in text and "quý III năm 2026" in text
    assert "MỤC TIÊU VẬN HÀNH (không phải chỉ tiêu của Kế hoạch)" in text
    assert "229/230" in cells and "Chưa đạt" in cells
    assert "Nơi nhận:" in cells
    assert "MÔ PHỎNG" not in text  # the province's own configuration: real figures, no banner
    marked = tmp / "q3-simulated.md"
    assert report(urls["prometheus"], marked, "--period", "2026-Q3", "--format", "md", "--simulated").returncode == 0
    assert "SỐ LIỆU MÔ PHỎNG" in marked.read_text(encoding="utf-8").split("## II.")[0]  # on the first page

    xlsx = tmp / "q3.xlsx"
    assert report(urls["prometheus"], xlsx, "--period", "2026-Q3", "--format", "xlsx").returncode == 0
    book = load_workbook(str(xlsx))
    assert "PromQL" in book.sheetnames
    rows = {r[0]: r for r in book["Hạ tầng mạng, đường truyền"].iter_rows(min_row=2, values_only=True)}
    assert (rows[COVERAGE][5], rows[COVERAGE][6]) == (229, 230)
    queries = {r[0]: r[1] for r in book["PromQL"].iter_rows(min_row=2, values_only=True)}
    assert any("egov_kpi_member_up_seconds_total" in q for q in queries.values())

    pdf = tmp / "q3.pdf"
    done = report(urls["prometheus"], pdf, "--period", "2026-Q3", "--format", "pdf")
    assert done.returncode == 0, done.stderr
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "BÁO CÁO" in text and "Độc lập - Tự do - Hạnh phúc" in text and "quý III năm 2026" in text
    assert "229/230" in text
    pages = tmp / "pages"
    pages.mkdir()
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "2", str(pdf), str(pages / "page")], check=True)
    assert len(list(pages.glob("page-*.png"))) == 2  # for a person to look at: the first two pages


def test_bad_input_gets_a_clear_message(servers, tmp_path: Path) -> None:
    urls, _, _, _ = servers
    done = report(urls["prometheus"], tmp_path / "x.json", "--period", "2026-Q5", "--format", "json")
    assert done.returncode == 2 and "unknown period '2026-Q5'" in done.stderr
    done = report("http://127.0.0.1:9", tmp_path / "x.json", "--period", "2026-Q3", "--format", "json")
    assert done.returncode == 1 and "cannot reach the query API at http://127.0.0.1:9" in done.stderr
    done = report("http://user:s3cret@127.0.0.1:9", tmp_path / "x.json", "--period", "2026-Q3", "--format", "json")
    assert "s3cret" not in done.stderr + done.stdout
    done = report(urls["prometheus"], tmp_path / "x.json", "--period", "2027-Q2", "--format", "json")
    assert done.returncode == 1 and "has not begun yet" in done.stderr
    assert not (tmp_path / "x.json").exists()


def test_the_query_api_behind_tls_and_basic_auth(servers, tmp_path: Path) -> None:
    """report.prometheus with a CA file and basic credentials from a secret reference, against
    Prometheus's own web configuration (exporter-toolkit: TLS and bcrypt basic auth)."""
    import os
    import time

    import bcrypt
    import trustme
    from support.net import free_port

    _, _, _, tmp = servers
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    hashed = bcrypt.hashpw(b"s3cret-pw", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(f"tls_server_config:\n  cert_file: {tmp_path / 'server.crt'}\n"
                                      f"  key_file: {tmp_path / 'server.key'}\n"
                                      f"basic_auth_users:\n  report: '{hashed}'\n", encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text("global: {}\n", encoding="utf-8")
    data = tmp_path / "tsdb"
    shutil.copytree(tmp / "tsdb", data, ignore=shutil.ignore_patterns("lock", "wal", "chunks_head"))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([shutil.which("prometheus") or "prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=100y",
                             f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={tmp_path / 'web.yml'}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        config_dir = tmp_path / "province"
        shutil.copytree(PROVINCE.parent / "bac-giang", config_dir / "bac-giang")
        text = PROVINCE.read_text(encoding="utf-8")
        assert "    url: http://127.0.0.1:9090" in text
        text = text.replace("    url: http://127.0.0.1:9090", f"    url: https://127.0.0.1:{port}\n"
                            f"    ca_file: {tmp_path / 'ca.pem'}\n"
                            "    auth: {basic: {username: report, password: env:EGOV_REPORT_PASSWORD}}")
        config = config_dir / "bac-giang.yml"
        config.write_text(text, encoding="utf-8")

        def run(password: str) -> subprocess.CompletedProcess:
            return subprocess.run([*AGENT, "report", "--config", str(config), "--period", "2026-Q3", "--format",
                                   "json", "-o", str(tmp_path / "q3.json")], capture_output=True, text=True,
                                  timeout=600, cwd=REPO, env={**os.environ, "EGOV_REPORT_PASSWORD": password})

        deadline = time.monotonic() + 60
        while True:
            done = run("s3cret-pw")
            if done.returncode == 0 or time.monotonic() > deadline or "refused" in done.stderr:
                break
            time.sleep(1)  # Prometheus is still opening its blocks
        assert done.returncode == 0, done.stderr
        coverage = figures(tmp_path / "q3.json")[COVERAGE]
        assert (coverage["numerator"], coverage["denominator"]) == (229, 230)
        wrong = run("not-the-password")
        assert wrong.returncode == 1 and "refused the credentials (HTTP 401)" in wrong.stderr
        assert "not-the-password" not in wrong.stderr + wrong.stdout and "s3cret" not in wrong.stderr
        missing = subprocess.run([*AGENT, "report", "--config", str(config), "--period", "2026-Q3", "--format",
                                  "json", "-o", str(tmp_path / "x.json")], capture_output=True, text=True,
                                 timeout=600, cwd=REPO, env={k: v for k, v in os.environ.items()
                                                             if k != "EGOV_REPORT_PASSWORD"})
        assert missing.returncode == 2 and "EGOV_REPORT_PASSWORD is not set" in missing.stderr
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
