"""Bắc Giang's 44 portals and web systems simulated by the lab and probed by the agent: the portal KPIs
(portals up, component portals counted, Decree 43 sections, availability) follow the faults injected."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.province import bac_giang

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.lab import Lab, write_config

# The portal KPIs proposed for config/provinces/bac-giang.yml (quotes checked against the seeds).
KPIS = """\
kpis:
  - id: portals_up
    class: direct
    area: portals
    title_vi: Tỷ lệ cổng thông tin điện tử (cổng tỉnh và 40 cổng thành phần) đang hoạt động
    title_en: Share of the provincial portal and its 40 component portals that are up
    citation: &portals40
      document: 59/KH-UBND
      date: 2019-03-29
      section: I.2
      quote: Năm 2018, xây dựng Công thông tin điện tử tập trung, thống nhất của tỉnh và 40 Công thông tin điện tử thành phần của các sở, cơ quan thuộc UBND tỉnh, UBND cấp huyện.
      seed: 001_ab339fb7d2214235.txt
    measure:
      kind: coverage
      select: {collector: http, tags: [portal]}
    targets:
      - {phase: vận hành, deadline: 2030-12-31, comparator: ">=", value: 98%, origin: ops}
  - id: component_portals_count
    class: direct
    area: portals
    title_vi: Số Cổng thông tin điện tử thành phần đang hoạt động
    title_en: Component portals up
    unit: count
    citation: *portals40
    measure:
      kind: count
      select: {collector: http, tags: [component_portal]}
    targets:
      - {phase: hiện trạng 2018, deadline: 2018-12-31, comparator: ">=", value: 40}
  - id: portal_nd43_compliance_2020
    class: direct
    area: portals
    title_vi: Tỷ lệ Cổng TTĐT của sở, ngành, UBND cấp huyện công khai đủ các mục theo Nghị định 43/2011/NĐ-CP
    title_en: Department and district portals up and showing every section Decree 43/2011 requires
    citation:
      document: 59/KH-UBND
      date: 2019-03-29
      section: II.1.2.1
      quote: 100% Cổng Thông tin điện tử của các sở, ngành, UBND cấp huyện công khai thông tin đầy đủ theo quy định tại Nghị định số 43/2011/NĐ-CP ngày 13/6/2011 của Chính phủ
      seed: 001_ab339fb7d2214235.txt
    measure:
      kind: coverage
      select: {collector: http, tags: [nd43]}
    targets:
      - {phase: "2019-2020", deadline: 2020-12-31, comparator: "=", value: 100%}
  - id: portals_availability_30d
    class: direct
    area: portals
    title_vi: Độ sẵn sàng của các cổng thông tin điện tử (30 ngày)
    title_en: Availability of the provincial and component portals over 30 days
    citation:
      document: 59/KH-UBND
      date: 2019-03-29
      section: II.2.4.c
      quote: Tiếp tục duy trì khai thác, nâng cấp, phát triển Cổng thông tin điện tử của tỉnh
      seed: 001_ab339fb7d2214235.txt
    measure:
      kind: availability
      select: {collector: http, tags: [portal]}
      window: 30d
    targets:
      - {phase: vận hành, deadline: 2030-12-31, comparator: ">=", value: 99.5%, origin: ops}
  - id: dvc_portal_formed_2020
    class: direct
    area: portals
    title_vi: Cổng dịch vụ công của tỉnh được hình thành và đang hoạt động
    title_en: The provincial public-service portal exists and is up
    citation:
      document: 472/QĐ-UBND
      date: 2016-03-31
      section: II.2.2
      quote: Công dịch vụ công của tỉnh được hình thành
      seed: 000_f8096e640c92e7e4.txt
    measure:
      kind: coverage
      select: {collector: http, tags: [dvc_portal]}
    targets:
      - {phase: "2016-2020", deadline: 2020-12-31, comparator: "=", value: 100%}
"""  # noqa: E501 - quotes stay verbatim, on one line each

FAULTS = {"portal-tu-phap": "down", "portal-hh": "wrong_content", "portal-bg": "cert_expired", "web-dvc": "error"}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bg-portals")
    province = tmp / "bac-giang.yml"
    portals = bac_giang("portals.yml").collector("http", interval="60s", timeout="5s", concurrency=64,
                                                 settings={"threads": 16})
    province.write_text(portals.yaml() + KPIS, encoding="utf-8")

    async def main() -> tuple[str, Agent]:
        lab = Lab(province, down_ratio=0.0)
        try:
            data = await lab.start()
            for target, state in FAULTS.items():
                await lab.set_state(target, state)
            write_config(data, tmp / "agent.yml")
            agent = Agent(load_config(tmp / "agent.yml"))
            await agent.collect_once()
            return agent.exposition.render(None)[0].decode(), agent
        finally:
            await lab.close()

    mp = pytest.MonkeyPatch()
    mp.setenv("EGOV_AGENT_PROBE_ALLOW", "127.0.0.0/8,::1/128")
    try:
        text, agent = asyncio.run(main())
    finally:
        mp.undo()
    return {f.name: f for f in text_string_to_metric_families(text)}, agent


def _kpi(families, name: str, kpi: str) -> float:
    return next(s.value for s in families[name].samples if s.labels["kpi"] == kpi)


def test_portal_kpis_follow_the_faults(exposition):
    families, _agent = exposition
    # 41 portals (1 provincial + 40 component); down: Tư pháp, Hiệp Hòa (content), the provincial one (TLS).
    assert _kpi(families, "egov_kpi_numerator", "portals_up") == 38
    assert _kpi(families, "egov_kpi_denominator", "portals_up") == 41
    assert _kpi(families, "egov_kpi_value", "component_portals_count") == 38
    assert _kpi(families, "egov_kpi_target_met", "component_portals_count") == 0
    assert _kpi(families, "egov_kpi_value", "portal_nd43_compliance_2020") == pytest.approx(38 / 40)
    assert _kpi(families, "egov_kpi_value", "portals_availability_30d") == pytest.approx(38 / 41)
    assert _kpi(families, "egov_kpi_value", "dvc_portal_formed_2020") == 0


def test_each_fault_has_its_reason(exposition):
    _families, agent = exposition
    reasons = {t: s.result.reason for t, s in agent.states().items() if not s.result.up}
    assert reasons == {"portal-tu-phap": "connect_error", "portal-hh": "content_mismatch",
                       "portal-bg": "tls_expired", "web-dvc": "status_mismatch"}


def test_portal_series_carry_the_unit_hierarchy(exposition):
    families, _agent = exposition
    sample = next(s for s in families["egov_http_status_code"].samples if s.labels["target"] == "portal-hh")
    assert sample.labels["district"] == "bg-hh" and sample.labels["unit"] == "bg-hh"
    assert sample.value == 200
