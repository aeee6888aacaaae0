#!/usr/bin/env python3
"""Generate config/provinces/bac-giang/plan-kpis.yml: the quantified targets of 472/QĐ-UBND and
59/KH-UBND that bac-giang.yml and its other includes do not carry yet (../shared/kpi/bac-giang.md
§2.1–2.6), most of them manual (surveys, tax, procurement, ICT-industry statistics).

Comparators follow the catalogue: «trên X%» → ">", «tối thiểu X%» / «từ X% trở lên» → ">=", «khoảng»
→ approx, a bare X% → ">=" (a minimum goal), 100% → "="; word-only targets stay qualitative. Each
quote is copied verbatim from the seed (tests/test_catalogues.py checks it). The current-status figures
of KH59 §I (catalogue §2.7) are baselines, not targets, and are left out.

Run: python3 scripts/gen_bac_giang_plan_kpis.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "config" / "provinces" / "bac-giang" / "plan-kpis.yml"

Q472 = {"document": "472/QĐ-UBND", "date": "2016-03-31", "seed": "000_f8096e640c92e7e4.txt"}
KH59 = {"document": "59/KH-UBND", "date": "2019-03-29", "seed": "001_ab339fb7d2214235.txt"}
P2020 = ("2016-2020", "2020-12-31")
P2030 = ("2021-2030", "2030-12-31")
K2020 = ("2019-2020", "2020-12-31")
K2025 = ("2021-2025", "2025-12-31")

# Example sources for the from_system KPIs below (syntax: bac-giang/apps.yml). Paths, fields and
# tables are placeholders for the installed systems' statistics interfaces; never contacted from a
# test machine. Secrets: EGOV_BG_QLVB_TOKEN (as apps.yml), EGOV_BG_MAIL_TOKEN, EGOV_BG_HOP_TOKEN,
# EGOV_BG_DVC_DB_PASSWORD (as apps.yml), EGOV_BG_TINH_UY_TOKEN, EGOV_BG_SSO_TOKEN, EGOV_BG_LGSP_TOKEN,
# EGOV_BG_BAO_CAO_TOKEN.


def _http(sid: str, url: str, token: str, series: dict, period: bool = True) -> dict:
    out = {"id": sid, "kind": "http_json", "url": url, "auth": {"bearer": f"env:{token}"}}
    if period:  # the system counts its records by their own dates: any period is cut exactly
        out["params"] = {"tu_ngay": "{period_start}", "den_ngay": "{period_last_day}"}
    out["granularity"] = "event" if period else "daily"
    out |= {"interval": "1h", "timeout": "60s", "stale_after": "6h", "series": series}
    return out


def _ratio(num: str, den: str) -> dict:
    return {"numerator": num, "denominator": den}


def _per_unit(num: str, den: str) -> dict:
    return {"items": "$.don_vi[*]", "unit": "$.ma_don_vi", "numerator": num, "denominator": den}


def _sql(where: str, num_expr: str) -> dict:
    return {"query": f"SELECT ma_don_vi, SUM({num_expr}) AS dat, COUNT(*) AS tong\n"
                     f"FROM dich_vu_cong WHERE {where} GROUP BY ma_don_vi\n",
            "unit": "ma_don_vi", "numerator": "dat", "denominator": "tong"}


SOURCES = [
    _http("qlvb_bo_sung", "https://qlvb.bacgiang.gov.vn/api/v1/thong-ke/van-ban-bo-sung", "EGOV_BG_QLVB_TOKEN", {
        "edoc_submission_ppc": _per_unit("$.van_ban_trinh_dien_tu", "$.van_ban_trinh_khong_mat"),
        "edoc_exchange_signed": _per_unit("$.van_ban_lien_thong_ky_so", "$.van_ban_khong_mat"),
    }),
    _http("tinh_uy_vb", "https://vanban.tinhuy.bacgiang.gov.vn/api/thong-ke", "EGOV_BG_TINH_UY_TOKEN", {
        "party_edoc": _ratio("$.van_ban_dien_tu_xac_thuc", "$.van_ban_khong_mat"),
    }),
    _http("thu_dien_tu", "https://mail.bacgiang.gov.vn/api/v1/thong-ke/hop-thu", "EGOV_BG_MAIL_TOKEN", {
        "mailboxes_in_use": _per_unit("$.hop_thu_hoat_dong", "$.so_cbcc"),
    }),
    # The meeting calendar joined with the MCU log: the MCU alone cannot know meetings held in person.
    _http("lich_hop", "https://hop.bacgiang.gov.vn/api/thong-ke/cuoc-hop", "EGOV_BG_HOP_TOKEN", {
        "leader_meetings_ready": _ratio("$.lanh_dao_ubnd.san_sang", "$.lanh_dao_ubnd.tong"),
        "meetings_online": _ratio("$.tinh_huyen_xa.truc_tuyen", "$.tinh_huyen_xa.tong"),
        "meeting_time_reduction": {"value": "$.ty_le_rut_ngan_thoi_gian_hop"},
    }),
    {"id": "dvc_dich_vu", "kind": "sql", "url": "postgresql+psycopg://egov_ro@10.24.10.13:5432/dichvucong",
     "password": "env:EGOV_BG_DVC_DB_PASSWORD", "granularity": "daily", "interval": "6h", "timeout": "120s",
     "stale_after": "1d",
     "series": {
         "basic_level3": _sql("co_ban", "CASE WHEN muc_do >= 3 THEN 1 ELSE 0 END"),
         "level4": _sql("TRUE", "CASE WHEN muc_do = 4 THEN 1 ELSE 0 END"),
         "eligible_level3": _sql("du_dieu_kien_truc_tuyen", "CASE WHEN muc_do >= 3 THEN 1 ELSE 0 END"),
         "eligible_level4": _sql("du_dieu_kien_truc_tuyen", "CASE WHEN muc_do = 4 THEN 1 ELSE 0 END"),
         "eligible_level34": _sql("du_dieu_kien_truc_tuyen", "CASE WHEN muc_do >= 3 THEN 1 ELSE 0 END"),
         "l34_national": _sql("muc_do >= 3", "CASE WHEN tich_hop_dvcqg THEN 1 ELSE 0 END"),
         "popular_l34_national": _sql("muc_do >= 3 AND pho_bien", "CASE WHEN tich_hop_dvcqg THEN 1 ELSE 0 END"),
         "supported": _sql("TRUE", "CASE WHEN co_ho_tro THEN 1 ELSE 0 END"),
         "mobile_signature": _sql("muc_do >= 3", "CASE WHEN ky_so_di_dong THEN 1 ELSE 0 END"),
         "e_dossier": _sql("muc_do >= 3", "CASE WHEN xu_ly_ho_so_dien_tu THEN 1 ELSE 0 END"),
         "business_registry_data": _sql("muc_do >= 3", "CASE WHEN dung_csdl_dkdn THEN 1 ELSE 0 END"),
         "form_autofill": {"query": "SELECT ma_don_vi, SUM(truong_tu_dong) AS tu_dong, SUM(tong_truong) AS tong\n"
                                    "FROM bieu_mau_ngay WHERE ngay >= :period_start AND ngay < :period_end\n"
                                    "GROUP BY ma_don_vi\n",
                           "unit": "ma_don_vi", "numerator": "tu_dong", "denominator": "tong"},
         "transactions_eauth": {"query": "SELECT ma_don_vi, SUM(giao_dich_xac_thuc) AS xac_thuc,"
                                         " SUM(giao_dich) AS tong\n"
                                         "FROM giao_dich_ngay WHERE ngay >= :period_start AND ngay < :period_end\n"
                                         "GROUP BY ma_don_vi\n",
                                "unit": "ma_don_vi", "numerator": "xac_thuc", "denominator": "tong"},
         # 1 when the unit's one-stop desk runs on the unified three-level system, 0 otherwise: a yes/no per unit.
         "unified_one_stop": {"query": "SELECT ma_don_vi, MAX(CASE WHEN he_thong_thong_nhat THEN 1 ELSE 0 END) AS da\n"
                                       "FROM don_vi_mot_cua GROUP BY ma_don_vi\n",
                              "unit": "ma_don_vi", "value": "da"},
     }},
    _http("sso", "https://sso.bacgiang.gov.vn/api/thong-ke/dinh-danh", "EGOV_BG_SSO_TOKEN", {
        "eid_users": _ratio("$.nguoi_dung_dinh_danh_hop_nhat", "$.nguoi_dung"),
    }, period=False),
    _http("lgsp", "https://lgsp.bacgiang.gov.vn/api/thong-ke/ket-noi", "EGOV_BG_LGSP_TOKEN", {
        "connected_systems": _ratio("$.he_thong_da_ket_noi", "$.he_thong_co_nhu_cau"),
    }, period=False),
    _http("bao_cao_ht", "https://baocao.bacgiang.gov.vn/api/thong-ke/bao-cao-dinh-ky", "EGOV_BG_BAO_CAO_TOKEN", {
        "reports_national": _per_unit("$.gui_qua_he_thong_quoc_gia", "$.bao_cao_dinh_ky_khong_mat"),
        "reports_provincial": _per_unit("$.cap_nhat_he_thong_tinh", "$.bao_cao_dinh_ky_khong_mat"),
    }),
]

# Example subordinate units' routers (KH59 App. I.2 «100% các đơn vị trực thuộc»): the plan lists none.
TARGETS = [
    {"id": "bg-y-te-bvdk-icmp", "unit": "bg-y-te-bvdk", "collector": "icmp",
     "name": "Đường truyền WAN: Bệnh viện Đa khoa tỉnh (đơn vị trực thuộc Sở Y tế, ví dụ)",
     "tags": ["wan_subordinate"], "params": {"host": "10.22.1.10"}},
    {"id": "bg-gd-dt-thpt-icmp", "unit": "bg-gd-dt-thpt", "collector": "icmp",
     "name": "Đường truyền WAN: Trường THPT chuyên Bắc Giang (đơn vị trực thuộc Sở GD&ĐT, ví dụ)",
     "tags": ["wan_subordinate"], "params": {"host": "10.22.1.11"}},
]


# The units the plan sentences count (agent/inventory.py): KPIs over units divide by these.
ONE_STOP_QUOTE = "thanh tra tỉnh không có thủ tục hành chính"
INVENTORIES = [
    {"id": "bg_state_agencies", "title_vi": "Cơ quan nhà nước từ cấp tỉnh đến cấp xã: 22 sở, ngành, 10 UBND cấp "
                                            "huyện, 230 UBND xã, phường, thị trấn",
     "title_en": "State agencies from provincial to commune level: 22 departments, 10 district and 230 commune PCs",
     "levels": ["department", "district", "commune"], "expected": 262},
    {"id": "bg_departments_districts", "title_vi": "22 sở, ngành và 10 UBND cấp huyện",
     "title_en": "The 22 departments and 10 district People's Committees",
     "levels": ["department", "district"], "expected": 32},
    {"id": "bg_one_stop_departments", "title_vi": "19 sở, ngành triển khai một cửa điện tử",
     "title_en": "The 19 departments with a one-stop desk", "levels": ["department"], "expected": 19,
     "exclude": [
         {"unit": "bg-thanh-tra", "reason": ONE_STOP_QUOTE},
         {"unit": "bg-vp-hdnd", "assumed": True,
          "reason": "not an agency handling administrative procedures (the plan counts 19 and names none)"},
         {"unit": "bg-ptth", "assumed": True,
          "reason": "a public broadcaster, not an agency handling administrative procedures (assumed)"},
     ]},
    {"id": "bg_one_stop_districts", "title_vi": "10 UBND cấp huyện", "title_en": "The 10 district People's Committees",
     "levels": ["district"], "expected": 10},
    {"id": "bg_one_stop_communes", "title_vi": "230 xã, phường, thị trấn", "title_en": "The 230 communes",
     "levels": ["commune"], "expected": 230},
    {"id": "bg_subordinate_units", "title_vi": "Các đơn vị trực thuộc sở, ban, ngành, UBND cấp huyện",
     "title_en": "Units subordinate to the departments and district PCs",
     "units": ["bg-y-te-bvdk", "bg-gd-dt-thpt"], "complete": False,
     "incomplete_reason": "the plan lists no subordinate units; two examples are configured"},
]


def manual(kid, area, vi, en, doc, section, quote, targets, unit=None, kind="ratio"):
    return kpi(kid, "manual", area, vi, en, doc, section, quote, targets, {"kind": kind, "source": "manual"}, unit)


def kpi(kid, cls, area, vi, en, doc, section, quote, targets, measure, unit=None):
    out = {"id": kid, "class": cls, "area": area, "title_vi": vi, "title_en": en}
    if unit:
        out["unit"] = unit
    out["citation"] = {"document": doc["document"], "date": doc["date"], "section": section, "quote": quote,
                       "seed": doc["seed"]}
    out["measure"] = measure
    rows = []
    for (phase, deadline), comparator, value in targets:
        row = {"phase": phase, "deadline": deadline, "comparator": comparator}
        if comparator == "qualitative":
            row["text"] = value
        elif comparator == "range":
            row["low"], row["high"] = value
        else:
            row["value"] = value
        rows.append(row)
    out["targets"] = rows
    return out


def src(source, series, **extra):
    return {"kind": "ratio", "source": source, "series": series, **extra}


def unit_flags(series, inventory, **extra):
    """The share of an inventory's units for which the public-service database says yes."""
    return {"kind": "coverage", "source": "dvc_dich_vu", "series": series, "inventory": inventory, **extra}


Q_II22_BIZ = ("Trên 60% doanh nghiệp tham gia các website thương mại điện tử để mua bán các sản phẩm hàng hóa và "
              "dịch vụ; trên 50% doanh nghiệp sử dụng dịch vụ chữ ký số khi tham gia giao dịch điện tử.")
Q_II22_PROC = ("Trên 40% số lượng các gói thầu chào hàng cạnh tranh, trên 30% số lượng gói thầu quy mô nhỏ đấu thầu "
               "rộng rãi, đấu thầu hạn chế thực hiện lựa chọn nhà thầu qua mạng.")
Q_II22_REG = ("Tỷ lệ cấp đăng ký doanh nghiệp qua mạng đạt khoảng 20%; tỷ lệ cấp giấy chứng nhận đầu tư qua mạng "
              "đạt khoảng 10%.")
Q_II23 = ("Tổng giá trị sản xuất công nghiệp và dịch vụ công nghệ thông tin đến năm 2020 đạt khoảng 53.000 tỷ đồng; "
          "đóng góp khoảng 31% tổng giá trị sản xuất công nghiệp của tỉnh; tốc độ tăng trưởng bình quân giai đoạn "
          "2016 – 2020 đạt khoảng 27%/năm. Tỷ trọng công nghiệp và dịch vụ công nghệ thông tin đóng góp vào GRDP đạt "
          "khoảng 4,1%.")
Q_II24_BIZ = ("Trên 85% các doanh nghiệp hoạt động trong lĩnh vực công nghệ thông tin và trên 60% các doanh nghiệp "
              "hoạt động trong các lĩnh vực khác có cán bộ phụ trách công nghệ thông tin và cán bộ lãnh đạo công nghệ "
              "thông tin.")
Q_DVC2020 = ("Công dịch vụ công của tỉnh được hình thành, cung cấp khoảng 55% dịch vụ công cơ bản mức độ 3 và khoảng "
             "30% dịch vụ công mức độ 4 phục vụ người dân và doanh nghiệp.")
Q_III2_BIZ = ("Trên 70% doanh nghiệp có trang thông tin điện tử, cập nhật định kỳ thông tin hoạt động, quảng bá sản "
              "phẩm; trên 85% doanh nghiệp tham gia các website thương mại điện tử để mua bán các sản phẩm hàng hóa và "
              "dịch vụ; trên 80% doanh nghiệp sử dụng dịch vụ chữ ký số khi tham gia giao dịch điện tử.")
Q_III2_TAX = ("Trên 95% số doanh nghiệp thực hiện nộp thuế qua mạng. Trên 75% số hộ, cá nhân kinh doanh kê khai nghĩa "
              "vụ thuế phát sinh qua mạng từ việc cho thuê tài sản và lệ phí trước bạ khi đăng ký ô tô, xe máy.")
Q_III2_PROC = ("Trên 70% số lượng các gói thầu chào hàng cạnh tranh, trên 65% số lượng các gói thầu quy mô nhỏ đầu "
               "thầu rộng rãi, đấu thầu hạn chế thực hiện lựa chọn nhà thầu qua mạng.")
Q_III2_REG = ("Tỷ lệ cấp đăng ký doanh nghiệp qua mạng đạt khoảng 40%; tỷ lệ cấp giấy chứng nhận đầu tư qua mạng "
              "đạt khoảng 30%.")
Q_III2_POP = ("Trên 85% dân số sử dụng các trang thiết bị kết nối Internet (máy tính xách tay, máy tính bảng, thiết bị "
              "cá nhân, điện thoại thông minh...) khai thác dịch vụ công. Trên 90% cán bộ y tế được phổ cập sử dụng "
              "tin học.")
Q_III3 = ("Tổng giá trị sản xuất công nghiệp và dịch vụ công nghệ thông tin đến năm 2030 đạt khoảng 592.300 tỷ đồng; "
          "đóng góp khoảng 40% tổng giá trị sản xuất công nghiệp của tỉnh; tốc độ tăng trưởng bình quân giai đoạn "
          "2021 – 2030 đạt khoảng 27,3%/năm. Tỷ trọng công nghiệp và dịch vụ công nghệ thông tin đóng góp vào GRDP đạt "
          "khoảng 7,4%.")
Q_III4_BIZ = ("Trên 95% các doanh nghiệp hoạt động trong lĩnh vực công nghệ thông tin và trên 80% các doanh nghiệp "
              "hoạt động trong các lĩnh vực khác có cán bộ phụ trách công nghệ thông tin")
Q_K72 = ("Tỷ lệ hồ sơ giải quyết trực tuyến trên tổng số hồ sơ giải quyết thủ tục hành chính của tỉnh đạt từ 20% trở "
         "lên; tích hợp 30% các dịch vụ công trực tuyến mức độ 3, 4 của tỉnh với Cổng Dịch vụ công quốc gia")
Q_K74A = ("Trên 50% thủ tục hành chính đáp ứng yêu cầu được triển khai dịch vụ công trực tuyến mức độ 3 và 30% mức "
          "độ 4")
Q_K88 = ("100% dịch vụ công trực tuyến mức độ 3, 4 phổ biến, liên quan tới nhiều người dân, doanh nghiệp được tích "
         "hợp lên Công Dịch vụ công quốc gia; 100% giao dịch trên Công Dịch vụ công và Hệ thống thông tin một cửa điện "
         "tử của tỉnh được xác thực điện tử.")
Q_K92 = ("80% thủ tục hành chính đáp ứng yêu cầu được triển khai dịch vụ công trực tuyến mức độ 3, 4; tích hợp 50% "
         "các dịch vụ công trực tuyến mức độ 3, 4 của tỉnh với Công Dịch vụ công quốc gia")
Q_ONE_STOP = ("Nâng cấp, chuẩn hóa hệ thống phần mềm một cửa điện tử tại 19 sở, ngành, 10 UBND cấp huyện và 230 xã, "
              "phường, thị trấn để thực hiện thống nhất thành một hệ thống phần mềm một cửa điện tử phục vụ giải quyết "
              "thủ tục hành chính liên thông ba cấp")

KPIS = [
    # ---- Q472 §II targets to 2020
    kpi("wan_fibre_agency_coverage_2020", "direct", "network",
        "Tỷ lệ cơ quan nhà nước từ cấp tỉnh đến cấp xã có đường truyền WAN hoạt động",
        "State agencies from provincial to commune level whose WAN link is up (262 agencies)",
        Q472, "II.2.1", "100% cơ quan nhà nước từ cấp tỉnh đến cấp xã được kết nối cáp quang băng rộng, tốc độ cao "
        "đến mạng WAN của tỉnh", [(P2020, "=", "100%")],
        {"kind": "coverage", "select": {"tags": ["wan_link"]}, "inventory": "bg_state_agencies", "unit_up": "all",
         "group_by": "district"}),
    kpi("online_meeting_readiness_ppc_2020", "from_system", "video_conference",
        "Tỷ lệ cuộc họp của lãnh đạo UBND tỉnh với đơn vị trực thuộc bảo đảm điều kiện kỹ thuật họp trực tuyến",
        "PPC-leader meetings with subordinate units technically ready to be held online",
        Q472, "II.2.1", "Bảo đảm các điều kiện về kỹ thuật cho trên 90% các cuộc họp của lãnh đạo Ủy ban nhân dân "
        "tỉnh với các đơn vị trực thuộc được thực hiện trên môi trường mạng.", [(P2020, ">", "90%")],
        src("lich_hop", "leader_meetings_ready")),
    kpi("edoc_submitted_to_ppc_2020", "from_system", "e_documents",
        "Tỷ lệ văn bản, tài liệu không mật trình UBND tỉnh dưới dạng điện tử",
        "Non-secret documents submitted to the PPC in electronic form",
        Q472, "II.2.2", "100% các văn bản, tài liệu không mật trình Ủy ban nhân dân tỉnh của các cơ quan nhà nước "
        "dưới dạng điện tử", [(P2020, "=", "100%")], src("qlvb_bo_sung", "edoc_submission_ppc")),
    kpi("civil_servant_email_usage_2020", "from_system", "e_documents",
        "Tỷ lệ cán bộ, công chức sử dụng hộp thư điện tử trong công việc",
        "Civil servants using an official mailbox for work",
        Q472, "II.2.2", "100% cán bộ, công chức cơ quan nhà nước sử dụng hộp thư điện tử trong công việc",
        [(P2020, "=", "100%")], src("thu_dien_tu", "mailboxes_in_use")),
    kpi("dvc_level3_provided_2020", "from_system", "public_services",
        "Tỷ lệ dịch vụ công cơ bản cung cấp ở mức độ 3", "Basic public services offered online at level 3",
        Q472, "II.2.2", Q_DVC2020, [(P2020, "approx", "55%")], src("dvc_dich_vu", "basic_level3")),
    kpi("dvc_level4_provided_2020", "from_system", "public_services",
        "Tỷ lệ dịch vụ công cung cấp ở mức độ 4", "Public services offered online at level 4",
        Q472, "II.2.2", Q_DVC2020, [(P2020, "approx", "30%")], src("dvc_dich_vu", "level4")),
    manual("biz_ecommerce_participation_2020", "e_business", "Tỷ lệ doanh nghiệp tham gia website thương mại điện tử",
           "Enterprises trading on e-commerce websites", Q472, "II.2.2", Q_II22_BIZ, [(P2020, ">", "60%")]),
    manual("biz_digital_signature_2020", "digital_signature",
           "Tỷ lệ doanh nghiệp sử dụng dịch vụ chữ ký số khi giao dịch điện tử",
           "Enterprises using digital-signature services in e-transactions", Q472, "II.2.2", Q_II22_BIZ,
           [(P2020, ">", "50%")]),
    manual("tax_payment_online_biz_2020", "e_tax", "Tỷ lệ doanh nghiệp nộp thuế qua mạng",
           "Enterprises paying tax online", Q472, "II.2.2",
           "trên 90% số doanh nghiệp thực hiện nộp thuế qua mạng", [(P2020, ">", "90%")]),
    manual("household_tax_online_2020", "e_tax",
           "Tỷ lệ hộ, cá nhân kinh doanh kê khai thuế cho thuê tài sản, lệ phí trước bạ ô tô, xe máy qua mạng",
           "Business households declaring property-lease tax and vehicle registration fees online", Q472, "II.2.2",
           "Trên 50% số hộ, cá nhân kinh doanh kê khai nghĩa vụ thuế phát sinh qua mạng từ việc cho thuê tài sản và "
           "lệ phí trước bạ khi đăng ký ô tô, xe máy.", [(P2020, ">", "50%")]),
    manual("social_insurance_e_transactions_2020", "e_social_insurance",
           "Tỷ lệ cơ quan, tổ chức giao dịch điện tử thủ tục tham gia bảo hiểm xã hội",
           "Agencies and organisations using e-transactions for social-insurance procedures", Q472, "II.2.2",
           "Trên 90% cơ quan, tổ chức thực hiện giao dịch điện tử trong việc thực hiện thủ tục tham gia bảo hiểm xã "
           "hội.", [(P2020, ">", "90%")]),
    manual("eprocurement_competitive_offer_2020", "e_procurement",
           "Tỷ lệ gói thầu chào hàng cạnh tranh lựa chọn nhà thầu qua mạng",
           "Competitive-offer packages whose contractor is selected online", Q472, "II.2.2", Q_II22_PROC,
           [(P2020, ">", "40%")]),
    manual("eprocurement_small_open_limited_2020", "e_procurement",
           "Tỷ lệ gói thầu quy mô nhỏ đấu thầu rộng rãi, hạn chế lựa chọn nhà thầu qua mạng",
           "Small open or limited-bidding packages whose contractor is selected online", Q472, "II.2.2", Q_II22_PROC,
           [(P2020, ">", "30%")]),
    manual("online_business_registration_2020", "e_business", "Tỷ lệ cấp đăng ký doanh nghiệp qua mạng",
           "Business registrations issued online", Q472, "II.2.2", Q_II22_REG, [(P2020, "approx", "20%")]),
    manual("online_investment_certificate_2020", "e_business", "Tỷ lệ cấp giấy chứng nhận đầu tư qua mạng",
           "Investment certificates issued online", Q472, "II.2.2", Q_II22_REG, [(P2020, "approx", "10%")]),
    manual("population_internet_device_dvc_2020", "society",
           "Tỷ lệ dân số sử dụng thiết bị kết nối Internet khai thác dịch vụ công",
           "Population using Internet-connected devices to reach public services", Q472, "II.2.2",
           "Trên 70% dân số sử dụng các trang thiết bị kết nối Internet (máy tính xách tay, máy tính bảng, thiết bị "
           "cá nhân, điện thoại thông minh...) khai thác dịch vụ công.", [(P2020, ">", "70%")]),
    manual("health_staff_it_literacy_2020", "human_resources", "Tỷ lệ cán bộ y tế được phổ cập sử dụng tin học",
           "Health staff with basic computer literacy", Q472, "II.2.2",
           "Trên 80% cán bộ y tế được phổ cập sử dụng tin học.", [(P2020, ">", "80%")]),
    manual("ict_share_industrial_output_2020", "ict_industry",
           "Tỷ trọng công nghiệp, dịch vụ CNTT trong tổng giá trị sản xuất công nghiệp của tỉnh",
           "ICT share of the province's industrial output", Q472, "II.2.3", Q_II23, [(P2020, "approx", "31%")]),
    manual("ict_growth_rate_2016_2020", "ict_industry",
           "Tốc độ tăng trưởng bình quân công nghiệp, dịch vụ CNTT giai đoạn 2016-2020 (%/năm)",
           "Average annual growth of the ICT industry and services, 2016-2020", Q472, "II.2.3", Q_II23,
           [(P2020, "approx", "27%")]),
    manual("ict_grdp_share_2020", "ict_industry", "Tỷ trọng công nghiệp và dịch vụ CNTT đóng góp vào GRDP",
           "ICT industry and services share of GRDP", Q472, "II.2.3", Q_II23, [(P2020, "approx", "4.1%")]),
    manual("it_leader_assigned_2020", "human_resources", "Tỷ lệ sở, ban, ngành, huyện có lãnh đạo phụ trách CNTT",
           "Departments and districts with a leader in charge of IT", Q472, "II.2.4",
           "100% sở, ban, ngành, huyện có lãnh đạo phụ trách công nghệ thông tin.", [(P2020, "=", "100%")]),
    manual("it_officer_college_2020", "human_resources",
           "Tỷ lệ sở, ban, ngành, huyện có cán bộ phụ trách CNTT trình độ cao đẳng trở lên",
           "Departments and districts with an IT officer holding a college degree or higher", Q472, "II.2.4",
           "100% các sở, ban, ngành, huyện có cán bộ phụ trách công nghệ thông tin có trình độ cao đẳng hoặc tương "
           "đương trở lên.", [(P2020, "=", "100%")]),
    manual("biz_it_staff_ict_sector_2020", "human_resources",
           "Tỷ lệ doanh nghiệp lĩnh vực CNTT có cán bộ phụ trách và lãnh đạo CNTT",
           "ICT-sector enterprises with an IT officer and an IT leader", Q472, "II.2.4", Q_II24_BIZ,
           [(P2020, ">", "85%")]),
    manual("biz_it_staff_other_sector_2020", "human_resources",
           "Tỷ lệ doanh nghiệp lĩnh vực khác có cán bộ phụ trách và lãnh đạo CNTT",
           "Enterprises in other sectors with an IT officer and an IT leader", Q472, "II.2.4", Q_II24_BIZ,
           [(P2020, ">", "60%")]),
    manual("biz_employee_computer_use_2020", "human_resources",
           "Tỷ lệ nhân viên doanh nghiệp biết sử dụng máy tính và ứng dụng CNTT",
           "Enterprise employees able to use computers and IT applications", Q472, "II.2.4",
           "Trên 80% nhân viên tại các doanh nghiệp hoạt động trong lĩnh vực công nghệ thông tin và trong các lĩnh "
           "vực khác biết sử dụng máy tính và các ứng dụng công nghệ thông tin trong công việc.",
           [(P2020, ">", "80%")]),
    manual("shared_provincial_db_count_2020", "data_centre", "Số cơ sở dữ liệu dùng chung của tỉnh được hoàn thiện",
           "Provincial shared databases completed", Q472, "IV.1",
           "ưu tiên hoàn thiện 6 cơ sở dữ liệu dùng chung của tỉnh", [(P2020, ">=", 6)], unit="count", kind="value"),
    kpi("party_edoc_exchange_2020", "from_system", "e_documents",
        "Tỷ lệ văn bản chính thức giữa Văn phòng Tỉnh ủy và đơn vị trực thuộc gửi/nhận điện tử, xác thực điện tử",
        "Official non-secret documents between the Party Committee Office and its units sent electronically "
        "and e-authenticated", Q472, "IV.3.1",
        "Khoảng 90% văn bản, tài liệu chính thức (theo quy định, trừ các văn bản, tài liệu mật) trao đổi giữa các "
        "cơ quan Đảng ở Văn phòng Tỉnh ủy và các đơn vị trực thuộc được gửi/nhận dưới dạng văn bản điện tử",
        [(P2020, "approx", "90%")], src("tinh_uy_vb", "party_edoc")),
    # ---- Q472 §III orientation to 2030
    kpi("wan_agency_coverage_2030", "direct", "network",
        "Tỷ lệ cơ quan nhà nước của tỉnh có đường truyền mạng diện rộng hoạt động (2030)",
        "Provincial state agencies whose WAN link is up (2030; 262 agencies)",
        Q472, "III.1", "đảm bảo bảo 100% các cơ quan nhà nước của tỉnh được kết nối với mạng diện rộng, đường "
        "truyền tốc độ cao", [(P2030, "=", "100%")],
        {"kind": "coverage", "select": {"tags": ["wan_link"]}, "inventory": "bg_state_agencies", "unit_up": "all"}),
    kpi("edoc_exchange_signed_2030", "from_system", "digital_signature",
        "Tỷ lệ văn bản không mật trao đổi trên môi trường mạng và có chữ ký số (2030)",
        "Non-secret documents exchanged online with a digital signature (2030)", Q472, "III.2",
        "Trên 95% các văn bản, tài liệu của các cơ quan nhà nước các cấp (trừ các văn bản mật) được trao đổi trên "
        "môi trường mạng và có ứng dụng chữ ký số.", [(P2030, ">", "95%")],
        src("qlvb_bo_sung", "edoc_exchange_signed")),
    kpi("online_meetings_multilevel_2030", "from_system", "video_conference",
        "Tỷ lệ cuộc họp giữa UBND tỉnh với cấp huyện, cơ quan cấp tỉnh với cấp huyện, xã thực hiện trực tuyến (2030)",
        "Meetings (PPC–district PCs, provincial bodies–district and commune units) held online (2030)",
        Q472, "III.2", "Trên 95% các cuộc họp trực tuyến giữa Ủy ban nhân dân tỉnh với Ủy ban nhân dân cấp huyện, "
        "giữa các cơ quan cấp tỉnh với cấp huyện và các đơn vị cấp xã được thực hiện trực tuyến trên môi trường "
        "mạng.", [(P2030, ">", "95%")], src("lich_hop", "meetings_online")),
    kpi("dvc_level3_provided_2030", "from_system", "public_services",
        "Tỷ lệ dịch vụ công cơ bản mức độ 3 (2030)", "Basic public services at level 3 (2030)", Q472, "III.2",
        "Cung cấp được 100% dịch vụ công cơ bản mức độ 3 và khoảng 55% dịch vụ công mức độ 4 phục vụ người dân và "
        "doanh nghiệp.", [(P2030, "=", "100%")], src("dvc_dich_vu", "basic_level3")),
    kpi("dvc_level4_provided_2030", "from_system", "public_services",
        "Tỷ lệ dịch vụ công mức độ 4 (2030)", "Public services at level 4 (2030)", Q472, "III.2",
        "Cung cấp được 100% dịch vụ công cơ bản mức độ 3 và khoảng 55% dịch vụ công mức độ 4 phục vụ người dân và "
        "doanh nghiệp.", [(P2030, "approx", "55%")], src("dvc_dich_vu", "level4")),
    manual("biz_website_2030", "e_business", "Tỷ lệ doanh nghiệp có trang thông tin điện tử (2030)",
           "Enterprises with a regularly updated website (2030)", Q472, "III.2", Q_III2_BIZ, [(P2030, ">", "70%")]),
    manual("biz_ecommerce_participation_2030", "e_business",
           "Tỷ lệ doanh nghiệp tham gia website thương mại điện tử (2030)",
           "Enterprises trading on e-commerce websites (2030)", Q472, "III.2", Q_III2_BIZ, [(P2030, ">", "85%")]),
    manual("biz_digital_signature_2030", "digital_signature",
           "Tỷ lệ doanh nghiệp sử dụng dịch vụ chữ ký số khi giao dịch điện tử (2030)",
           "Enterprises using digital-signature services (2030)", Q472, "III.2", Q_III2_BIZ, [(P2030, ">", "80%")]),
    manual("tax_payment_online_biz_2030", "e_tax", "Tỷ lệ doanh nghiệp nộp thuế qua mạng (2030)",
           "Enterprises paying tax online (2030)", Q472, "III.2", Q_III2_TAX, [(P2030, ">", "95%")]),
    manual("household_tax_online_2030", "e_tax", "Tỷ lệ hộ, cá nhân kinh doanh kê khai thuế qua mạng (2030)",
           "Business households declaring taxes online (2030)", Q472, "III.2", Q_III2_TAX, [(P2030, ">", "75%")]),
    manual("social_insurance_e_transactions_2030", "e_social_insurance",
           "Tỷ lệ cơ quan, tổ chức giao dịch điện tử thủ tục bảo hiểm xã hội (2030)",
           "Agencies and organisations using e-transactions for social insurance (2030)", Q472, "III.2",
           "Trên 95% cơ quan, tổ chức thực hiện giao dịch điện tử trong việc thực hiện thủ tục tham gia bảo hiểm xã "
           "hội.", [(P2030, ">", "95%")]),
    manual("eprocurement_competitive_offer_2030", "e_procurement",
           "Tỷ lệ gói thầu chào hàng cạnh tranh lựa chọn nhà thầu qua mạng (2030)",
           "Competitive-offer packages procured online (2030)", Q472, "III.2", Q_III2_PROC, [(P2030, ">", "70%")]),
    manual("eprocurement_small_open_limited_2030", "e_procurement",
           "Tỷ lệ gói thầu quy mô nhỏ đấu thầu rộng rãi, hạn chế qua mạng (2030)",
           "Small open or limited-bidding packages procured online (2030)", Q472, "III.2", Q_III2_PROC,
           [(P2030, ">", "65%")]),
    manual("online_business_registration_2030", "e_business", "Tỷ lệ cấp đăng ký doanh nghiệp qua mạng (2030)",
           "Business registrations issued online (2030)", Q472, "III.2", Q_III2_REG, [(P2030, "approx", "40%")]),
    manual("online_investment_certificate_2030", "e_business", "Tỷ lệ cấp giấy chứng nhận đầu tư qua mạng (2030)",
           "Investment certificates issued online (2030)", Q472, "III.2", Q_III2_REG, [(P2030, "approx", "30%")]),
    manual("population_internet_device_dvc_2030", "society",
           "Tỷ lệ dân số sử dụng thiết bị kết nối Internet khai thác dịch vụ công (2030)",
           "Population using Internet devices to reach public services (2030)", Q472, "III.2", Q_III2_POP,
           [(P2030, ">", "85%")]),
    manual("health_staff_it_literacy_2030", "human_resources", "Tỷ lệ cán bộ y tế được phổ cập tin học (2030)",
           "Health staff with basic computer literacy (2030)", Q472, "III.2", Q_III2_POP, [(P2030, ">", "90%")]),
    manual("ict_output_value_2030", "ict_industry", "Tổng giá trị sản xuất công nghiệp và dịch vụ CNTT (2030)",
           "ICT industry and services output (2030)", Q472, "III.3", Q_III3,
           [(P2030, "approx", 592_300_000_000_000)], unit="vnd", kind="value"),
    manual("ict_share_industrial_output_2030", "ict_industry",
           "Tỷ trọng CNTT trong tổng giá trị sản xuất công nghiệp của tỉnh (2030)",
           "ICT share of the province's industrial output (2030)", Q472, "III.3", Q_III3, [(P2030, "approx", "40%")]),
    manual("ict_growth_rate_2021_2030", "ict_industry",
           "Tốc độ tăng trưởng bình quân công nghiệp, dịch vụ CNTT giai đoạn 2021-2030 (%/năm)",
           "Average annual growth of the ICT industry and services, 2021-2030", Q472, "III.3", Q_III3,
           [(P2030, "approx", "27.3%")]),
    manual("ict_grdp_share_2030", "ict_industry", "Tỷ trọng công nghiệp và dịch vụ CNTT đóng góp vào GRDP (2030)",
           "ICT industry and services share of GRDP (2030)", Q472, "III.3", Q_III3, [(P2030, "approx", "7.4%")]),
    manual("biz_it_staff_ict_sector_2030", "human_resources",
           "Tỷ lệ doanh nghiệp lĩnh vực CNTT có cán bộ phụ trách CNTT (2030)",
           "ICT-sector enterprises with an IT officer (2030)", Q472, "III.4", Q_III4_BIZ, [(P2030, ">", "95%")]),
    manual("biz_it_staff_other_sector_2030", "human_resources",
           "Tỷ lệ doanh nghiệp lĩnh vực khác có cán bộ phụ trách CNTT (2030)",
           "Enterprises in other sectors with an IT officer (2030)", Q472, "III.4", Q_III4_BIZ, [(P2030, ">", "80%")]),
    manual("biz_employee_computer_use_2030", "human_resources",
           "Tỷ lệ nhân viên doanh nghiệp biết sử dụng máy tính (2030)",
           "Enterprise employees able to use computers (2030)", Q472, "III.4",
           "Trên 90% nhân viên tại các doanh nghiệp hoạt động trong lĩnh vực công nghệ thông tin và trong các lĩnh "
           "vực khác biết sử dụng máy tính", [(P2030, ">", "90%")]),
    # ---- Q472 §V.1 investment. Figures without «khoảng» read as at least (a bare figure, like a bare X%).
    manual("plan_investment_total", "investment", "Nhu cầu vốn đầu tư thực hiện quy hoạch đến 2020",
           "Investment needed for the plan to 2020", Q472, "V.1", "Nhu cầu vốn đầu tư: 700 tỷ đồng.",
           [(P2020, ">=", 700_000_000_000)], unit="vnd", kind="value"),
    manual("plan_funding_central_budget", "investment", "Vốn ngân sách trung ương cho quy hoạch",
           "Central-budget funding of the plan", Q472, "V.1", "Vốn ngân sách trung ương: 40 tỷ đồng",
           [(P2020, ">=", 40_000_000_000)], unit="vnd", kind="value"),
    manual("plan_funding_provincial_budget", "investment", "Vốn ngân sách tỉnh cho quy hoạch",
           "Provincial-budget funding of the plan", Q472, "V.1", "Vốn ngân sách tỉnh: 44,5 tỷ đồng",
           [(P2020, ">=", 44_500_000_000)], unit="vnd", kind="value"),
    manual("plan_funding_private_ppp_rental", "investment", "Vốn doanh nghiệp, hợp tác công tư, thuê dịch vụ",
           "Enterprise, public-private and service-rental funding of the plan", Q472, "V.1",
           "Vốn doanh nghiệp, hợp tác công tư, thuê dịch vụ: 615,5 tỷ đồng", [(P2020, ">=", 615_500_000_000)],
           unit="vnd", kind="value"),
    # ---- KH59 §II.1.2.1, 2019-2020
    kpi("eid_verified_users_2020", "from_system", "security",
        "Tỷ lệ người dân, doanh nghiệp được xác thực định danh điện tử thông suốt, hợp nhất",
        "Citizens and businesses with a unified e-identity across the e-government systems", KH59, "II.1.2.1",
        "20% số lượng người dân và doanh nghiệp tham gia hệ thống thông tin Chính quyền điện tử của tỉnh được xác "
        "thực danh điện tử thông suốt và hợp nhất", [(K2020, ">=", "20%")], src("sso", "eid_users")),
    kpi("dvc_l34_national_portal_integration_2020", "from_system", "public_services",
        "Tỷ lệ dịch vụ công trực tuyến mức độ 3, 4 tích hợp với Cổng Dịch vụ công quốc gia",
        "Level-3/4 online services integrated with the National Public Service Portal", KH59, "II.1.2.1", Q_K72,
        [(K2020, ">=", "30%")], src("dvc_dich_vu", "l34_national")),
    kpi("tthc_dvc_level3_share_2020", "from_system", "public_services",
        "Tỷ lệ thủ tục hành chính đủ điều kiện triển khai dịch vụ công trực tuyến mức độ 3",
        "Eligible procedures offered as level-3 online services", KH59, "II.1.2.1", Q_K74A,
        [(K2020, ">", "50%")], src("dvc_dich_vu", "eligible_level3")),
    kpi("tthc_dvc_level4_share_2020", "from_system", "public_services",
        "Tỷ lệ thủ tục hành chính đủ điều kiện triển khai dịch vụ công trực tuyến mức độ 4",
        "Eligible procedures offered as level-4 online services", KH59, "II.1.2.1", Q_K74A,
        [(K2020, ">=", "30%")], src("dvc_dich_vu", "eligible_level4")),
    kpi("dvc_user_support_2020", "from_system", "public_services",
        "Tỷ lệ dịch vụ công được hỗ trợ sử dụng, giải đáp thắc mắc", "Public services with user support and Q&A",
        KH59, "II.1.2.1", "100% dịch vụ công được hỗ trợ sử dụng, giải đáp thắc mắc cho người dân, doanh nghiệp",
        [(K2020, "=", "100%")], src("dvc_dich_vu", "supported")),
    manual("agency_satisfaction_published_2020", "public_services",
           "Tỷ lệ cơ quan nhà nước công khai mức độ hài lòng của người dân khi sử dụng dịch vụ công trực tuyến",
           "State agencies publishing citizens' satisfaction with their online services", KH59, "II.1.2.1",
           "50% cơ quan nhà nước công khai mức độ hài lòng của người dân khi sử dụng dịch vụ công trực tuyến",
           [(K2020, ">=", "50%")]),
    kpi("dvc_mobile_signature_2020", "from_system", "digital_signature",
        "Tỷ lệ dịch vụ công trực tuyến sử dụng chữ ký số trên nền tảng di động",
        "Online services accepting mobile digital signatures", KH59, "II.1.2.1",
        "20% dịch vụ công trực tuyến sử dụng chữ ký số trên nền tảng di động để thực hiện thủ tục hành chính",
        [(K2020, ">=", "20%")], src("dvc_dich_vu", "mobile_signature")),
    kpi("dvc_e_dossier_processing_2020", "from_system", "public_services",
        "Tỷ lệ dịch vụ công trực tuyến xử lý bằng hồ sơ điện tử", "Online services processed with e-dossiers",
        KH59, "II.1.2.1", "50% dịch vụ công trực tuyến xử lý bằng hồ sơ điện tử", [(K2020, ">=", "50%")],
        src("dvc_dich_vu", "e_dossier")),
    kpi("form_autofill_share_2020", "from_system", "public_services",
        "Tỷ lệ thông tin của người dân được tự động nhập vào biểu mẫu trực tuyến",
        "Citizen data filled into online forms automatically", KH59, "II.1.2.1",
        "20% thông tin của người dân được tự động nhập vào biểu mẫu trực tuyến", [(K2020, ">=", "20%")],
        src("dvc_dich_vu", "form_autofill")),
    kpi("dvc_business_registry_data_2020", "from_system", "public_services",
        "Tỷ lệ dịch vụ công trực tuyến sử dụng dữ liệu từ CSDL quốc gia về đăng ký doanh nghiệp",
        "Online services reusing the National Business Registration Database", KH59, "II.1.2.1",
        "50% dịch vụ công trực tuyến sử dụng dữ liệu từ Cơ sở dữ liệu quốc gia về Đăng ký doanh nghiệp",
        [(K2020, ">=", "50%")], src("dvc_dich_vu", "business_registry_data")),
    kpi("periodic_reports_national_system_2020", "from_system", "reporting",
        "Tỷ lệ báo cáo định kỳ gửi, nhận qua Hệ thống thông tin báo cáo quốc gia",
        "Periodic non-secret reports sent and received through the National Reporting System", KH59, "II.1.2.1",
        "Tối thiểu 30% báo cáo định kỳ (không bao gồm nội dung mật) được gửi, nhận qua Hệ thống thông tin báo cáo "
        "quốc gia.", [(K2020, ">=", "30%")],
        src("bao_cao_ht", "reports_national")),
    # «Rút ngắn từ 30% - 50%»: the plan gives a range, kept as one.
    kpi("meeting_time_reduction_2020", "from_system", "e_office",
        "Tỷ lệ rút ngắn thời gian họp nhờ hệ thống phục vụ họp và văn phòng điện tử",
        "Meeting time saved through the meeting and e-office system", KH59, "II.1.2.1",
        "Rút ngắn từ 30% - 50% thời gian họp, giảm tối đa việc sử dụng tài liệu giấy thông qua Hệ thống thông tin "
        "phục vụ họp và xử lý công việc, văn phòng điện tử.", [(K2020, "range", ("30%", "50%"))],
        {"kind": "value", "source": "lich_hop", "series": "meeting_time_reduction"}),
    # ---- KH59 §II.1.2.2, 2021-2025
    kpi("dvc_popular_national_portal_integration_2025", "from_system", "public_services",
        "Tỷ lệ dịch vụ công trực tuyến mức độ 3, 4 phổ biến tích hợp lên Cổng Dịch vụ công quốc gia",
        "Popular level-3/4 online services integrated into the National Public Service Portal", KH59, "II.1.2.2",
        Q_K88, [(K2025, "=", "100%")], src("dvc_dich_vu", "popular_l34_national")),
    kpi("dvc_onestop_transactions_eauth_2025", "from_system", "security",
        "Tỷ lệ giao dịch trên Cổng Dịch vụ công và Hệ thống một cửa điện tử được xác thực điện tử",
        "Transactions on the public-service portal and one-stop system that are e-authenticated", KH59, "II.1.2.2",
        Q_K88, [(K2025, "=", "100%")], src("dvc_dich_vu", "transactions_eauth")),
    kpi("eid_verified_users_2025", "from_system", "security",
        "Tỷ lệ người dân, doanh nghiệp được xác thực định danh điện tử thông suốt, hợp nhất (2025)",
        "Citizens and businesses with a unified e-identity (2025)", KH59, "II.1.2.2",
        "40% số lượng người dân và doanh nghiệp tham gia hệ thống thông tin Chính quyền điện tử của tỉnh được xác "
        "thực định danh điện tử thông suốt và hợp nhất", [(K2025, ">=", "40%")], src("sso", "eid_users")),
    kpi("tthc_dvc_l34_share_2025", "from_system", "public_services",
        "Tỷ lệ thủ tục hành chính đủ điều kiện triển khai dịch vụ công trực tuyến mức độ 3, 4 (2025)",
        "Eligible procedures offered as level-3/4 online services (2025)", KH59, "II.1.2.2", Q_K92,
        [(K2025, ">=", "80%")], src("dvc_dich_vu", "eligible_level34")),
    kpi("dvc_l34_national_portal_integration_2025", "from_system", "public_services",
        "Tỷ lệ dịch vụ công trực tuyến mức độ 3, 4 tích hợp với Cổng Dịch vụ công quốc gia (2025)",
        "Level-3/4 online services integrated with the National Public Service Portal (2025)", KH59, "II.1.2.2",
        Q_K92, [(K2025, ">=", "50%")], src("dvc_dich_vu", "l34_national")),
    kpi("lgsp_connected_systems_2025", "from_system", "data_centre",
        "Tỷ lệ phần mềm chuyên ngành, CSDL có nhu cầu kết nối được kết nối trên nền tảng LGSP của tỉnh",
        "Sector systems and databases (those needing it) connected through the provincial LGSP", KH59, "II.1.2.2",
        "Trên 60% hệ thống phần mềm chuyên ngành, cơ sở dữ liệu của các sở, ngành, địa phương (có nhu cầu kết nối) "
        "được kết nối, liên thông, đồng bộ trên nền tảng tích hợp, chia sẻ dữ liệu tỉnh Bắc Giang.",
        [(K2025, ">", "60%")],
        src("lgsp", "connected_systems")),
    kpi("periodic_reports_provincial_system_2025", "from_system", "reporting",
        "Tỷ lệ báo cáo định kỳ cập nhật, chia sẻ trên Hệ thống thông tin báo cáo của tỉnh",
        "Periodic non-secret reports updated and shared on the provincial reporting system", KH59, "II.1.2.2",
        "80% báo cáo định kỳ (không bao gồm nội dung mật) của các cơ quan hành chính nhà nước được cập nhật, chia sẻ "
        "trên Hệ thống thông tin báo cáo của tỉnh",
        [(K2025, ">=", "80%")], src("bao_cao_ht", "reports_provincial")),
    # ---- KH59 appendix and §II.2.4
    kpi("wan_subordinate_unit_coverage_2025", "direct", "network",
        "Tỷ lệ đơn vị trực thuộc sở, ngành, UBND cấp huyện có đường truyền WAN hoạt động",
        "Subordinate units of departments and district PCs whose WAN link is up (the list is not known yet)",
        KH59, "Phụ lục I.2", "đồng thời kết nối đến 100% các đơn vị trực thuộc các sở, ban, ngành, Ủy ban nhân dân "
        "cấp huyện", [(K2025, "=", "100%")],
        {"kind": "coverage", "select": {"collector": "icmp", "tags": ["wan_subordinate"]},
         "inventory": "bg_subordinate_units"}),
    kpi("one_stop_unified_departments_2020", "from_system", "one_stop",
        "Tỷ lệ sở, ngành (19) dùng hệ thống một cửa điện tử thống nhất liên thông ba cấp",
        "Departments (19) on the unified three-level one-stop system", KH59, "II.2.4.b", Q_ONE_STOP,
        [(K2020, "=", "100%")], unit_flags("unified_one_stop", "bg_one_stop_departments")),
    kpi("one_stop_unified_districts_2020", "from_system", "one_stop",
        "Tỷ lệ UBND cấp huyện (10) dùng hệ thống một cửa điện tử thống nhất liên thông ba cấp",
        "District PCs (10) on the unified three-level one-stop system", KH59, "II.2.4.b", Q_ONE_STOP,
        [(K2020, "=", "100%")], unit_flags("unified_one_stop", "bg_one_stop_districts")),
    kpi("one_stop_unified_communes_2020", "from_system", "one_stop",
        "Tỷ lệ xã, phường, thị trấn (230) dùng hệ thống một cửa điện tử thống nhất liên thông ba cấp",
        "Communes (230) on the unified three-level one-stop system", KH59, "II.2.4.b", Q_ONE_STOP,
        [(K2020, "=", "100%")], unit_flags("unified_one_stop", "bg_one_stop_communes", group_by="district")),
    manual("thdl_tcvn9250", "data_centre", "Trung tâm tích hợp dữ liệu đáp ứng tiêu chuẩn TCVN 9250:2012",
           "The data integration centre meets TCVN 9250:2012 (audit)", KH59, "Phụ lục I.1",
           "Giai đoạn 2019 - 2020: Đầu tư hạ tầng, trang thiết bị công nghệ thông tin tại Trung tâm tích hợp dữ "
           "liệu của tỉnh cơ bản theo tiêu chuẩn TCVN 9250:2012.",
           [(K2020, "qualitative", "cơ bản theo tiêu chuẩn TCVN 9250:2012"),
            (K2025, "qualitative", "theo tiêu chuẩn TCVN 9250:2012")], unit="value", kind="value"),
]

HEADER = """\
# Generated by scripts/gen_bac_giang_plan_kpis.py; edit the script, not this file.
# Bắc Giang: the quantified targets of 472/QĐ-UBND and 59/KH-UBND not carried by bac-giang.yml and its
# other includes (../shared/kpi/bac-giang.md §2.1–2.6): manual ones read from bac-giang/manual.csv,
# from_system ones from the example sources below (placeholders for the systems' interfaces; secrets
# as env: references), direct ones on the WAN targets. Addresses and URLs stand for the province's
# systems: validated, never contacted from a test machine.
"""

if __name__ == "__main__":
    with OUT.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        yaml.safe_dump({"inventories": INVENTORIES, "sources": SOURCES, "targets": TARGETS, "kpis": KPIS}, out,
                       allow_unicode=True,
                       sort_keys=False, width=120)
    print(f"wrote {OUT}: {len(SOURCES)} sources, {len(TARGETS)} targets, {len(KPIS)} KPIs")
