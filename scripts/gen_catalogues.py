#!/usr/bin/env python3
"""Generate the unit trees and example targets of Tiền Giang, Hưng Yên and Kiên Giang.

None of the three plans (27/NQ-HĐND, 2286/QĐ-UBND, 1891/QĐ-UBND) lists or counts the districts,
communes or departments (../shared/kpi/tien-giang_hung-yen_kien-giang.md §0.2). District names are
the provinces' district-level units at the plan's date (from the administrative lists, not the seed);
commune and department names and every commune count are placeholders marked ``generated: true``
until the province's official lists replace them. Addresses (10.0.0.0/8) and host names are invented
and stand for the province's real network: validated with check-config, never probed from a test machine.

Per province it writes <p>/units.yml and <p>/targets.yml:
- one WAN router per department, district and commune: ``<unit>-icmp`` tagged ``wan_link``;
- example THDL systems (tcp, tag ``thdl_system``), portals (http), the video-conference MCU and a
  few endpoints (sip), and the per-plan example targets listed in EXTRA below.

Run: python3 scripts/gen_catalogues.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent / "config" / "provinces"

# The usual composition of a province's departments and PPC agencies: not an official list.
DEPARTMENTS = [
    ("vp-ubnd", "Văn phòng UBND tỉnh"), ("noi-vu", "Sở Nội vụ"), ("tu-phap", "Sở Tư pháp"),
    ("khdt", "Sở Kế hoạch và Đầu tư"), ("tai-chinh", "Sở Tài chính"), ("cong-thuong", "Sở Công Thương"),
    ("nn-ptnt", "Sở Nông nghiệp và Phát triển nông thôn"), ("gtvt", "Sở Giao thông vận tải"),
    ("xay-dung", "Sở Xây dựng"), ("tn-mt", "Sở Tài nguyên và Môi trường"),
    ("tt-tt", "Sở Thông tin và Truyền thông"), ("ld-tbxh", "Sở Lao động - Thương binh và Xã hội"),
    ("vh-tt-dl", "Sở Văn hóa, Thể thao và Du lịch"), ("kh-cn", "Sở Khoa học và Công nghệ"),
    ("gd-dt", "Sở Giáo dục và Đào tạo"), ("y-te", "Sở Y tế"), ("thanh-tra", "Thanh tra tỉnh"),
    ("vp-hdnd", "Văn phòng HĐND tỉnh"), ("vp-tinh-uy", "Văn phòng Tỉnh ủy"),
]

# (code, slug, name_vi, name_en, net /16 second octet, districts as (suffix, name_vi, name_en, communes)).
# Commune counts are placeholders (the seeds give none), roughly the province's total at the plan's date.
PROVINCES = [
    ("tg", "tien-giang", "Tỉnh Tiền Giang", "Tien Giang Province", 30, [
        ("mt", "Thành phố Mỹ Tho", "My Tho City", 17), ("gc", "Thị xã Gò Công", "Go Cong Town", 12),
        ("txcl", "Thị xã Cai Lậy", "Cai Lay Town", 16), ("cb", "Huyện Cái Bè", "Cai Be District", 25),
        ("cl", "Huyện Cai Lậy", "Cai Lay District", 16), ("ct", "Huyện Châu Thành", "Chau Thanh District", 23),
        ("cg", "Huyện Chợ Gạo", "Cho Gao District", 19), ("gct", "Huyện Gò Công Tây", "Go Cong Tay District", 13),
        ("gcd", "Huyện Gò Công Đông", "Go Cong Dong District", 13),
        ("tp", "Huyện Tân Phước", "Tan Phuoc District", 13),
        ("tpd", "Huyện Tân Phú Đông", "Tan Phu Dong District", 6),
    ]),
    ("hy", "hung-yen", "Tỉnh Hưng Yên", "Hung Yen Province", 40, [
        ("tp", "Thành phố Hưng Yên", "Hung Yen City", 17), ("vl", "Huyện Văn Lâm", "Van Lam District", 11),
        ("vg", "Huyện Văn Giang", "Van Giang District", 11), ("ym", "Huyện Yên Mỹ", "Yen My District", 17),
        ("mh", "Huyện Mỹ Hào", "My Hao District", 13), ("at", "Huyện Ân Thi", "An Thi District", 21),
        ("kc", "Huyện Khoái Châu", "Khoai Chau District", 25), ("kd", "Huyện Kim Động", "Kim Dong District", 20),
        ("tl", "Huyện Tiên Lữ", "Tien Lu District", 15), ("pc", "Huyện Phù Cừ", "Phu Cu District", 14),
    ]),
    ("kg", "kien-giang", "Tỉnh Kiên Giang", "Kien Giang Province", 50, [
        ("rg", "Thành phố Rạch Giá", "Rach Gia City", 12), ("ht", "Thị xã Hà Tiên", "Ha Tien Town", 7),
        ("kl", "Huyện Kiên Lương", "Kien Luong District", 8), ("hd", "Huyện Hòn Đất", "Hon Dat District", 14),
        ("th", "Huyện Tân Hiệp", "Tan Hiep District", 11), ("ct", "Huyện Châu Thành", "Chau Thanh District", 10),
        ("gr", "Huyện Giồng Riềng", "Giong Rieng District", 19), ("gq", "Huyện Gò Quao", "Go Quao District", 11),
        ("ab", "Huyện An Biên", "An Bien District", 9), ("am", "Huyện An Minh", "An Minh District", 11),
        ("vt", "Huyện Vĩnh Thuận", "Vinh Thuan District", 8), ("pq", "Huyện Phú Quốc", "Phu Quoc District", 10),
        ("kh", "Huyện Kiên Hải", "Kien Hai District", 4), ("umt", "Huyện U Minh Thượng", "U Minh Thuong District", 6),
        ("gt", "Huyện Giang Thành", "Giang Thanh District", 5),
    ]),
]

# Shared systems at the THDL the plans name (TG Đ1.3.b–c, HY §3.1, KG IV.1–3): (id, name, port).
SYSTEMS = [
    ("qlvb", "Hệ thống quản lý văn bản và điều hành", 443),
    ("mot-cua", "Hệ thống một cửa điện tử", 443),
    ("thu-dien-tu", "Hệ thống thư điện tử công vụ", 443),
    ("cong-ttdt", "Cổng thông tin điện tử tỉnh", 443),
    ("cong-dvc", "Cổng dịch vụ công của tỉnh", 443),
]

# Per province: example targets for the direct KPIs whose sites the plan names but does not list.
# (id suffix, unit suffix ('' = root, else '<district>' or a department), collector, name, tags, params)
EXTRA: dict[str, list[tuple[str, str, str, str, list[str], dict]]] = {
    "tg": [
        ("bv-da-khoa-inet", "y-te", "icmp", "Bệnh viện Đa khoa tỉnh: kết nối Internet (ví dụ)",
         ["health_internet", "hospital"], {"host": "10.30.90.10"}),
        ("ttyt-cai-be-inet", "cb", "icmp", "Trung tâm Y tế huyện Cái Bè: kết nối Internet (ví dụ)",
         ["health_internet", "hospital"], {"host": "10.30.90.20"}),
        ("tyt-cb-01-inet", "cb-01", "icmp", "Trạm Y tế Xã số 01 (Cái Bè): kết nối Internet (ví dụ)",
         ["health_internet", "commune_health"], {"host": "10.30.91.11"}),
        ("tyt-mt-01-inet", "mt-01", "icmp", "Trạm Y tế Xã số 01 (Mỹ Tho): kết nối Internet (ví dụ)",
         ["health_internet", "commune_health"], {"host": "10.30.91.12"}),
    ],
    "hy": [
        ("san-gd-dt", "cong-thuong", "http", "Sàn giao dịch thương mại điện tử tỉnh (ví dụ)",
         ["etrading_floor"], {"url": "https://sangiaodich.hungyen.gov.vn/"}),
        ("dvh-at-01-inet", "at-01", "icmp", "Điểm văn hóa Xã số 01 (Ân Thi): Internet băng rộng (ví dụ)",
         ["cultural_point"], {"host": "10.40.92.11"}),
        ("dvh-kc-01-inet", "kc-01", "icmp", "Điểm văn hóa Xã số 01 (Khoái Châu): Internet băng rộng (ví dụ)",
         ["cultural_point"], {"host": "10.40.92.12"}),
        ("thon-at-01-a-inet", "at-01", "icmp", "Điểm truy cập thôn A, Xã số 01 (Ân Thi) (ví dụ)",
         ["hamlet_point"], {"host": "10.40.93.11"}),
        ("thon-kc-01-a-inet", "kc-01", "icmp", "Điểm truy cập thôn A, Xã số 01 (Khoái Châu) (ví dụ)",
         ["hamlet_point"], {"host": "10.40.93.12"}),
        ("bv-da-khoa-inet", "y-te", "icmp", "Bệnh viện Đa khoa tỉnh: LAN, Internet (ví dụ)",
         ["provincial_hospital"], {"host": "10.40.90.10"}),
        ("bv-da-khoa-his", "y-te", "tcp", "Bệnh viện Đa khoa tỉnh: hệ thống thông tin quản lý bệnh viện (ví dụ)",
         ["hospital_his"], {"host": "10.40.90.11", "port": 443}),
        ("bv-kc-wan", "kc", "icmp", "Bệnh viện huyện Khoái Châu: WAN (ví dụ)",
         ["district_hospital"], {"host": "10.40.90.20"}),
        ("bv-kc-inet", "kc", "tcp", "Bệnh viện huyện Khoái Châu: Internet qua proxy báo cáo (ví dụ)",
         ["hospital_internet"], {"host": "10.40.90.21", "port": 443}),
        ("csdl-vlap", "tt-tt-thdl", "tcp", "CSDL địa lý hành chính (VLAP)", ["key_database"],
         {"host": "10.40.10.20", "port": 5432}),
        ("csdl-dan-cu", "tt-tt-thdl", "tcp", "CSDL dân cư", ["key_database"], {"host": "10.40.10.21", "port": 5432}),
        ("csdl-thong-ke", "tt-tt-thdl", "tcp", "CSDL thống kê kinh tế - xã hội", ["key_database"],
         {"host": "10.40.10.22", "port": 5432}),
    ],
    "kg": [
        ("lien-thong-vpcp", "tt-tt-thdl", "tcp",
         "Kết nối Cổng dịch vụ công tỉnh – Cổng Văn phòng Chính phủ (trục liên thông, ví dụ)",
         ["dvc_vpcp_link"], {"host": "10.50.10.30", "port": 443}),
    ] + [
        (f"csdl-{i}", "tt-tt-thdl", "tcp", f"Cơ sở dữ liệu dùng chung số {i} (tên giả lập)", ["shared_database"],
         {"host": f"10.50.10.{40 + i}", "port": 5432})
        for i in range(1, 7)
    ],
}


def units(code: str, name_vi: str, name_en: str, districts: list) -> dict:
    children = []
    for suffix, d_vi, d_en, communes in districts:
        short = d_vi.split(" ", 2)[-1]
        children.append({
            "id": f"{code}-{suffix}", "name_vi": d_vi, "name_en": d_en, "level": "district",
            "children": [{"id": f"{code}-{suffix}-{i:02d}", "name_vi": f"Xã số {i:02d} ({short})",
                          "level": "commune", "generated": True} for i in range(1, communes + 1)],
        })
    for dep, dep_name in DEPARTMENTS:
        unit = {"id": f"{code}-{dep}", "name_vi": dep_name, "level": "department", "generated": True}
        if dep == "tt-tt":
            unit["children"] = [{"id": f"{code}-tt-tt-thdl", "name_vi": "Trung tâm Tích hợp dữ liệu tỉnh",
                                 "name_en": "Provincial data integration centre", "level": "site"}]
        children.append(unit)
    return {"units": [{"id": code, "name_vi": name_vi, "name_en": name_en, "level": "province",
                       "children": children}]}


# Luật Công nghệ thông tin 2006, Điều 28 khoản 2: what a state agency's portal must carry, one heading
# per item (a) to (h), as portals title their sections. Hưng Yên's 2286/QĐ-UBND §3.1 names it.
ARTICLE_28_ITEMS = (
    "Cơ cấu tổ chức",                      # a) tổ chức, chức năng, nhiệm vụ, quyền hạn
    "Văn bản quy phạm pháp luật",          # b) văn bản quy phạm pháp luật chuyên ngành
    "Thủ tục hành chính",                  # c) quy trình, thủ tục hành chính
    "Phổ biến pháp luật",                  # d) thông tin tuyên truyền, phổ biến pháp luật
    "Quy hoạch, kế hoạch",                 # đ) chiến lược, định hướng, quy hoạch, kế hoạch phát triển
    "Danh bạ thư điện tử",                 # e) danh mục địa chỉ thư điện tử của cán bộ, công chức
    "Dự án, đấu thầu",                     # g) dự án, hạng mục đầu tư, đấu thầu, mua sắm công
    "Lấy ý kiến góp ý",                    # h) mục lấy ý kiến góp ý
)
ARTICLE_28_PORTALS = {"hy"}


def targets(code: str, slug: str, net: int, districts: list) -> dict:
    out = []

    def add(tid: str, unit: str, collector: str, name: str, tags: list[str], params: dict) -> None:
        out.append({"id": f"{code}-{tid}", "unit": unit, "collector": collector, "name": name, "tags": tags,
                    "params": params})

    for i, (dep, dep_name) in enumerate(DEPARTMENTS):
        add(f"{dep}-icmp", f"{code}-{dep}", "icmp", f"Đường truyền WAN: {dep_name}", ["wan_link"],
            {"host": f"10.{net}.1.{10 + i}"})
    for d, (suffix, d_vi, _d_en, communes) in enumerate(districts, start=1):
        add(f"{suffix}-icmp", f"{code}-{suffix}", "icmp", f"Đường truyền WAN: {d_vi}", ["wan_link"],
            {"host": f"10.{net + 1}.{d}.1"})
        short = d_vi.split(" ", 2)[-1]
        for c in range(1, communes + 1):
            add(f"{suffix}-{c:02d}-icmp", f"{code}-{suffix}-{c:02d}", "icmp",
                f"Đường truyền WAN: Xã số {c:02d} ({short})", ["wan_link"], {"host": f"10.{net + 1}.{d}.{10 + c}"})
    thdl = f"{code}-tt-tt-thdl"
    for i, (sys_id, name, port) in enumerate(SYSTEMS):
        add(f"thdl-{sys_id}", thdl, "tcp", name, ["thdl_system"], {"host": f"10.{net}.10.{10 + i}", "port": port})
    domain = slug.replace("-", "") + ".gov.vn"
    portal: dict = {"url": f"https://{domain}/"}
    if code in ARTICLE_28_PORTALS:  # the plan names the provincial portal's Article 28 content
        portal["contains"] = list(ARTICLE_28_ITEMS)
    add("portal", code, "http", "Cổng thông tin điện tử tỉnh", ["portal", *(["article28"] if code in ARTICLE_28_PORTALS
                                                                         else [])], portal)
    add("dvc-portal", code, "http", "Cổng dịch vụ công của tỉnh", ["portal", "dvc_portal"],
        {"url": f"https://dichvucong.{domain}/"})
    add("mot-cua-web", code, "http", "Hệ thống một cửa điện tử", ["one_stop_web"],
        {"url": f"https://motcua.{domain}/"})
    add("vc-mcu", thdl, "mcu", "MCU hội nghị truyền hình trực tuyến", ["vc_mcu"], {
        "adapter": "snmp", "host": f"10.{net}.20.10", "community": "env:EGOV_SNMP_COMMUNITY",
        "oids": {  # placeholders for the vendor's MIB
            "active_conferences": "1.3.6.1.4.1.59059.1.1.0", "ports_in_use": "1.3.6.1.4.1.59059.1.2.0",
            "ports_total": "1.3.6.1.4.1.59059.1.3.0", "registered_endpoints": "1.3.6.1.4.1.59059.1.4.0",
            "meetings_held": "1.3.6.1.4.1.59059.1.5.0"}})
    add("vc-ubnd-sip", code, "sip", "Điểm cầu UBND tỉnh", ["vc_endpoint", "vc_province"],
        {"host": f"10.{net}.20.20", "transport": "tcp"})
    for d, (suffix, d_vi, _d_en, _c) in enumerate(districts[:3], start=1):
        add(f"{suffix}-vc-sip", f"{code}-{suffix}", "sip", f"Điểm cầu {d_vi}", ["vc_endpoint", "vc_district"],
            {"host": f"10.{net}.20.{20 + d}", "transport": "tcp"})
    for tid, unit, collector, name, tags, params in EXTRA.get(code, []):
        add(tid, f"{code}-{unit}" if unit else code, collector, name, tags, params)
    return {"targets": out}


def write(path: Path, data: dict, header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write(header)
        yaml.safe_dump(data, out, allow_unicode=True, sort_keys=False, width=120)


if __name__ == "__main__":
    note = ("# Generated by scripts/gen_catalogues.py; edit the script, not this file.\n"
            "# generated: true marks names invented for lack of the official list; commune counts are\n"
            "# placeholders too (the plan counts no districts, communes or departments).\n")
    for code, slug, name_vi, name_en, net, districts in PROVINCES:
        write(ROOT / slug / "units.yml", units(code, name_vi, name_en, districts), note)
        write(ROOT / slug / "targets.yml", targets(code, slug, net, districts),
              note + "# Addresses and host names are invented and stand for the province's network:\n"
              "# validated, never probed from a test machine.\n")
        print(f"wrote {ROOT / slug}/units.yml and targets.yml")
