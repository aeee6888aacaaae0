"""Bắc Giang's application KPIs (config/provinces/bac-giang/apps.yml) against the lab's simulated systems.

The lab serves the QLVB and one-stop APIs and a public-service database, and drops monthly reports;
the agent reads all four sources as configured for the province, and its KPI numbers must equal
the figures computed straight from the lab's database and files.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import ipaddress
import sqlite3
import stat
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook
from support.exposition import parse_samples, sample
from support.paths import REPO
from support.province import Province

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.domain.periods import current_periods
from agent.lab import Lab
from agent.lab import write_config as write_lab_config

APPS = REPO / "config" / "provinces" / "bac-giang" / "apps.yml"
SEEDS = REPO.parent / "shared" / "seeds"


def test_every_quote_is_verbatim_in_its_seed() -> None:
    if not SEEDS.is_dir():
        pytest.skip(f"{SEEDS} (the plans' text) is not beside the repository")
    kpis = yaml.safe_load(APPS.read_text(encoding="utf-8"))["kpis"]
    assert len(kpis) == 14
    for kpi in kpis:
        citation = kpi["citation"]
        text = (SEEDS / citation["seed"]).read_text(encoding="utf-8").replace("*", "")  # Markdown emphasis
        assert citation["quote"] in text, f"{kpi['id']}: quote not found verbatim in {citation['seed']}"




def lab_province() -> Province:
    """Bắc Giang's application sources and KPIs (apps.yml) over two departments and two districts' communes."""
    p = Province(code="bg-lab", name_en="Lab Province", root="bg",
                 levels=["province", "district", "commune", "department"])
    p.unit("bg-so-a", "Sở A", level="department").unit("bg-so-b", "Sở B", level="department")
    p.unit("bg-h1", "Huyện Một", level="district").unit("bg-h1-x1", "Xã Một", parent="bg-h1")
    p.unit("bg-h1-x2", "Xã Hai", parent="bg-h1")
    p.unit("bg-h2", "Huyện Hai", level="district").unit("bg-h2-x1", "Xã Ba", parent="bg-h2")
    return p.section("include", [str(APPS)])


LEVELS = {"bg": "province", "bg-so-a": "department", "bg-so-b": "department", "bg-h1": "district",
          "bg-h2": "district", "bg-h1-x1": "commune", "bg-h1-x2": "commune", "bg-h2-x1": "commune"}


def db_ratio(db: Path, table: str, numerator: str, denominator: str, kind: str = "year") -> tuple[int, int]:
    period = current_periods(load_config_reporting(), "Asia/Ho_Chi_Minh")[kind]
    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT SUM({numerator}), SUM({denominator}) FROM {table} WHERE ngay >= ? AND ngay < ?",
                           (period.start.isoformat(), period.end.isoformat())).fetchone()


def load_config_reporting():
    from agent.domain.periods import ReportingSpec
    return ReportingSpec(**yaml.safe_load(APPS.read_text(encoding="utf-8"))["reporting"])


def report_rows(folder: Path) -> list[tuple[str, str, object, object]]:
    """Every row of the dropped reports but the template's example rows (note «example»)."""
    rows = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".csv":
            with path.open(encoding="utf-8") as f:
                rows += [(r["ma_don_vi"], r["ky_bao_cao"], r["ho_so_xu_ly_tren_mang"], r["tong_ho_so_cong_viec"],
                          r["note"]) for r in csv.DictReader(f)]
        else:
            sheet = load_workbook(path, read_only=True).worksheets[0]
            rows += [tuple(r) for r in list(sheet.iter_rows(values_only=True))[1:]]
    assert any(r[4] == "example" for r in rows), "the lab drops the template with its example row"
    return [r[:4] for r in rows if r[4] != "example"]


def test_the_lab_serves_bac_giang_application_kpis(tmp_path: Path) -> None:
    province = lab_province().write(tmp_path / "province.yml")

    async def main():
        lab = Lab(province, down_ratio=0)
        try:
            data = await lab.start()
            agent_config = tmp_path / "lab" / "agent.yml"
            write_lab_config(data, agent_config)
            generated = yaml.safe_load(agent_config.read_text(encoding="utf-8"))
            agent = Agent(load_config(agent_config))
            await agent.collect_once()
            body, _ = agent.exposition.render(None)
            service = lab.services[0]
            db = service.database
            folder = Path(next(s["folder"] for s in generated["sources"] if s["kind"] == "file_drop"))
            figures = {  # straight from the lab's database, before the lab removes it
                # 472/QĐ-UBND: electronic exchanges (parallel-paper ones included) / every exchange.
                "edoc_exchange_rate_2020_q472": db_ratio(db, "van_ban_ngay", "lien_thong_dien_tu", "lien_thong"),
                # 59/KH-UBND: the same «trừ văn bản mật»: secret documents leave the denominator.
                "edoc_exchange_rate_2020_kh59": db_ratio(db, "van_ban_ngay", "lien_thong_dien_tu",
                                                         "lien_thong - lien_thong_mat"),
                "edoc_signed_rate_2020": db_ratio(db, "van_ban_ngay", "van_ban_ky_so", "van_ban_di"),
                "one_stop_dossier_share_2020": db_ratio(db, "ho_so_ngay", "qua_mot_cua", "da_giai_quyet"),
                "online_dossier_share_2020": db_ratio(db, "ho_so_ngay", "giai_quyet_truc_tuyen", "da_giai_quyet"),
                "online_dossier_l34_share_2025": db_ratio(db, "ho_so_ngay", "giai_quyet_muc_do_3_4",
                                                          "da_giai_quyet"),
            }
            return generated, parse_samples(body.decode()), figures, report_rows(folder), service.workdir
        finally:
            await lab.close()

    generated, samples, figures, rows, workdir = asyncio.run(main())
    assert not workdir.exists(), "the lab removes its databases, reports and secrets when it stops"

    # The lab never writes a credential into the agent configuration: references to 0600 files.
    by_id = {s["id"]: s for s in generated["sources"]}
    token_ref = by_id["qlvb"]["auth"]["bearer"]
    assert token_ref.startswith("file:")
    assert by_id["motcua"]["auth"]["basic"]["password"].startswith("file:")
    assert by_id["dvc_csdl"]["url"].startswith("sqlite:///") and "password" not in by_id["dvc_csdl"]
    assert all(by_id[s]["url"].startswith("http://127.77.") for s in ("qlvb", "motcua"))

    for source in ("qlvb", "motcua", "dvc_csdl", "bao_cao_thang"):
        assert sample(samples, "egov_source_up", source=source) == 1

    def kpi(name: str) -> tuple[float, float]:
        return (sample(samples, "egov_kpi_numerator", kpi=name), sample(samples, "egov_kpi_denominator", kpi=name))

    for kpi_id, (numerator, denominator) in figures.items():
        assert kpi(kpi_id) == (numerator, denominator), kpi_id
    # Work files from the dropped reports, per level, skipping the malformed row the lab plants.
    year = current_periods(load_config_reporting(), "Asia/Ho_Chi_Minh")["year"]
    for kpi_id, levels in (("work_files_online_province_2020", {"province", "department"}),
                           ("work_files_online_district_2025", {"district"}),
                           ("work_files_online_commune_2020", {"commune"})):
        chosen = [r for r in rows if LEVELS[r[0]] in levels and year.contains(dt.date.fromisoformat(str(r[1]) + "-01"))
                  and str(r[2]).isdigit()]
        assert kpi(kpi_id) == (sum(int(r[2]) for r in chosen), sum(int(r[3]) for r in chosen)), kpi_id
    assert sample(samples, "egov_source_skipped_rows", source="bao_cao_thang") == 1
    # Rates are plausible and the targets are judged: e-documents well above 80 %, level-3/4 below 50 %.
    assert sample(samples, "egov_kpi_target_met", kpi="edoc_exchange_rate_2020_q472") == 1
    assert sample(samples, "egov_kpi_target_met", kpi="online_dossier_l34_share_2025") == 0
    assert sample(samples, "egov_kpi_group_value", kpi="one_stop_dossier_share_2020", group="bg-h1") > 0.85
    # Two plans, two ratios: the lab's secret documents make the 59/KH-UBND rate the higher one.
    q472, kh59 = figures["edoc_exchange_rate_2020_q472"], figures["edoc_exchange_rate_2020_kh59"]
    assert q472[0] == kh59[0] and q472[1] > kh59[1]
    # The yes/no links to the national systems, as the systems report them.
    assert sample(samples, "egov_kpi_value", kpi="qlvb_national_axis_connected_2020") == 1
    assert sample(samples, "egov_kpi_target_met", kpi="dvc_national_portal_connected_2025") == 1


def test_a_generated_api_answers_a_share_for_a_ratio_kpi_and_a_count_for_a_count(tmp_path: Path) -> None:
    """«Rút ngắn từ 30% - 50% thời gian họp» is a share of meeting time: the lab's stand-in API must not
    answer it with a count (the demo showed 3000 %), while a count KPI still gets a count."""
    from agent.lab.apps import AppsLab
    from collectors.lab_addresses import AddressPool

    data = lab_province().to_dict()  # its units; the sources and KPIs below
    data["sources"] = [{"id": "hop", "kind": "http_json", "url": "https://hop.example.gov.vn/api/thong-ke",
                        "series": {"saved": {"value": "$.ty_le_rut_ngan"}, "held": {"value": "$.so_cuoc_hop"}}}]
    data["kpis"] = [{"id": "saved", "measure": {"kind": "value", "source": "hop", "series": "saved"}},
                    {"id": "held", "unit": "count", "measure": {"kind": "value", "source": "hop", "series": "held"}}]
    lab = AppsLab(AddressPool(ipaddress.IPv4Network("127.78.0.0/16")))

    async def main() -> dict:
        await lab.start(data, tmp_path)
        try:
            [server] = lab.servers.values()
            return server.generated["/api/thong-ke"]()
        finally:
            await lab.close()

    body = asyncio.run(main())
    assert 0 < body["ty_le_rut_ngan"] < 1
    assert isinstance(body["so_cuoc_hop"], int) and body["so_cuoc_hop"] >= 1


def test_lab_secret_files_are_private(tmp_path: Path) -> None:
    province = lab_province().write(tmp_path / "province.yml")

    async def main():
        lab = Lab(province, down_ratio=0)
        try:
            data = await lab.start()
            ref = next(s for s in data["sources"] if s["id"] == "qlvb")["auth"]["bearer"]
            mode = Path(ref.removeprefix("file:")).stat().st_mode
            return stat.S_IMODE(mode)
        finally:
            await lab.close()

    assert asyncio.run(main()) == 0o600
