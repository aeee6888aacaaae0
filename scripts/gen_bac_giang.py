#!/usr/bin/env python3
"""Generate the Bắc Giang unit tree and THDL target inventory under config/provinces/bac-giang/.

The plan gives counts, not lists: 10 districts (real names below), 230 communes and 22
departments (KH59 §I.1). Commune names and most system names are placeholders marked
``generated: true`` until the province's official lists replace them. Addresses are in 10.0.0.0/8
and stand for the province's real network: they are validated, never probed from a test machine.

The WAN inventory (wan.yml) gives every commune, district and department one router with two
targets sharing its address: ``<unit>-icmp`` (reachability) and ``<unit>-snmp`` (the uplink's IF-MIB
counters and oper status, community from ``env:EGOV_SNMP_COMMUNITY``). Both carry the tag
``wan_link``; the coverage KPIs count a unit's link up when all of its wan_link targets are up.

Run: python3 scripts/gen_bac_giang.py  (rewrites units.yml, thdl.yml and wan.yml)
"""

from __future__ import annotations

from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "config" / "provinces" / "bac-giang"

# (id suffix, Vietnamese name, English name, communes in 2019); 230 in all.
DISTRICTS = [
    ("tp", "Thành phố Bắc Giang", "Bac Giang City", 16),
    ("hh", "Huyện Hiệp Hòa", "Hiep Hoa District", 26),
    ("lg", "Huyện Lạng Giang", "Lang Giang District", 23),
    ("ln", "Huyện Lục Nam", "Luc Nam District", 27),
    ("lng", "Huyện Lục Ngạn", "Luc Ngan District", 30),
    ("sd", "Huyện Sơn Động", "Son Dong District", 23),
    ("ty", "Huyện Tân Yên", "Tan Yen District", 24),
    ("vy", "Huyện Việt Yên", "Viet Yen District", 19),
    ("yd", "Huyện Yên Dũng", "Yen Dung District", 21),
    ("yt", "Huyện Yên Thế", "Yen The District", 21),
]

# The plan counts 22 departments and agencies of the PPC without listing them: this is the usual
# composition, not an official list, hence generated: true.
DEPARTMENTS = [
    ("vp-ubnd", "Văn phòng UBND tỉnh"), ("noi-vu", "Sở Nội vụ"), ("tu-phap", "Sở Tư pháp"),
    ("khdt", "Sở Kế hoạch và Đầu tư"), ("tai-chinh", "Sở Tài chính"), ("cong-thuong", "Sở Công Thương"),
    ("nn-ptnt", "Sở Nông nghiệp và Phát triển nông thôn"), ("gtvt", "Sở Giao thông vận tải"),
    ("xay-dung", "Sở Xây dựng"), ("tn-mt", "Sở Tài nguyên và Môi trường"),
    ("tt-tt", "Sở Thông tin và Truyền thông"), ("ld-tbxh", "Sở Lao động - Thương binh và Xã hội"),
    ("vh-tt-dl", "Sở Văn hóa, Thể thao và Du lịch"), ("kh-cn", "Sở Khoa học và Công nghệ"),
    ("gd-dt", "Sở Giáo dục và Đào tạo"), ("y-te", "Sở Y tế"), ("thanh-tra", "Thanh tra tỉnh"),
    ("dan-toc", "Ban Dân tộc"), ("ngoai-vu", "Sở Ngoại vụ"), ("bql-kcn", "Ban Quản lý các khu công nghiệp"),
    ("vp-hdnd", "Văn phòng Đoàn ĐBQH và HĐND tỉnh"), ("ptth", "Đài Phát thanh và Truyền hình tỉnh"),
]

# Systems the plans name (KH59 §I.2, §II.2.3–2.4; Q472 appendix); the rest up to 98 are placeholders.
NAMED_SYSTEMS = [
    ("qlvb", "Phần mềm Quản lý văn bản và điều hành công việc", 443),
    ("mot-cua", "Hệ thống thông tin một cửa điện tử", 443),
    ("cong-ttdt", "Cổng thông tin điện tử tỉnh", 443),
    ("cong-dvc", "Cổng dịch vụ công trực tuyến của tỉnh", 443),
    ("thu-dien-tu", "Hệ thống thư điện tử", 443),
    ("lgsp", "Nền tảng tích hợp, chia sẻ dữ liệu tỉnh (LGSP)", 8443),
    ("bao-cao", "Hệ thống thông tin báo cáo của tỉnh", 443),
    ("hop-khong-giay", "Hệ thống thông tin phục vụ họp và xử lý công việc", 443),
    ("sso", "Dịch vụ xác thực một lần (SSO)", 443),
    ("ldap", "Dịch vụ thư mục (AD/LDAP)", 636),
    ("ky-so", "Dịch vụ chữ ký số", 443),
    ("thanh-toan", "Dịch vụ thanh toán trực tuyến", 443),
    ("sms", "Dịch vụ tin nhắn tự động (SMS)", 443),
    ("tai-san", "Phần mềm quản lý tài sản", 443),
    ("ho-tich", "Phần mềm hộ tịch", 443),
    ("csdl-cbcc", "Cơ sở dữ liệu cán bộ, công chức", 443),
    ("gis", "Bản đồ GIS chuyên ngành", 443),
    ("csdl-dat-dai", "Cơ sở dữ liệu đất đai", 5432),
]
HOSTED_SYSTEMS = 98  # the plan: «trên 95 hệ thống»


# Sites below departments: the THDL, and two examples of the «đơn vị trực thuộc» KH59 Phụ lục I.2 wants
# connected (the plan lists none, so the inventory of subordinate units is declared incomplete).
SITES = {
    "tt-tt": [{"id": "bg-thdl", "name_vi": "Trung tâm Tích hợp dữ liệu tỉnh (THDL)",
               "name_en": "Provincial data integration centre", "level": "site"}],
    "y-te": [{"id": "bg-y-te-bvdk", "name_vi": "Bệnh viện Đa khoa tỉnh (đơn vị trực thuộc, ví dụ)",
              "level": "site", "generated": True}],
    "gd-dt": [{"id": "bg-gd-dt-thpt", "name_vi": "Trường THPT chuyên Bắc Giang (đơn vị trực thuộc, ví dụ)",
               "level": "site", "generated": True}],
}


def units() -> dict:
    districts = []
    for code, name_vi, name_en, communes in DISTRICTS:
        districts.append({
            "id": f"bg-{code}", "name_vi": name_vi, "name_en": name_en, "level": "district",
            "children": [
                {"id": f"bg-{code}-{i:02d}", "name_vi": f"Xã số {i:02d} ({name_vi.removeprefix('Huyện ')})",
                 "level": "commune", "generated": True}
                for i in range(1, communes + 1)
            ],
        })
    departments = [
        {"id": f"bg-{code}", "name_vi": name, "level": "department", "generated": True,
         **({"children": SITES[code]} if code in SITES else {})}
        for code, name in DEPARTMENTS
    ]
    return {"units": [{"id": "bg", "name_vi": "Tỉnh Bắc Giang", "name_en": "Bac Giang Province",
                       "level": "province", "children": districts + departments}]}


def thdl_targets() -> dict:
    targets = [{"id": "thdl-host", "unit": "bg-thdl", "collector": "host",
                "name": "Máy chủ đặt tác tử giám sát", "params": {"processes": []}}]
    systems = list(NAMED_SYSTEMS) + [
        (f"he-thong-{i:02d}", f"Hệ thống chuyên ngành số {i:02d} (tên giả lập)", 443)
        for i in range(1, HOSTED_SYSTEMS - len(NAMED_SYSTEMS) + 1)
    ]
    for i, (code, name, port) in enumerate(systems):
        targets.append({"id": f"thdl-{code}", "unit": "bg-thdl", "collector": "tcp", "name": name,
                        "tags": ["thdl_system"],
                        "params": {"host": f"10.24.{10 + i // 200}.{10 + i % 200}", "port": port}})
    # KH59 Phụ lục I.1: «Xây dựng hệ thống giám sát an toàn thông tin tỉnh Bắc Giang»; its console answers.
    targets.append({"id": "thdl-giam-sat-attt", "unit": "bg-thdl", "collector": "tcp",
                    "name": "Hệ thống giám sát an toàn thông tin tỉnh (bảng điều khiển; tên giả lập)",
                    "tags": ["security_monitoring"], "params": {"host": "10.24.9.10", "port": 443}})
    return {"targets": targets}


UPLINK = "GigabitEthernet0/0/0"  # the WAN interface of the routers the province rents (ifName)


def wan_routers() -> list[tuple[str, str, str]]:
    """(unit id, unit name, router address) for every department, district and commune.

    Addresses: departments 10.20.1.x, district centres 10.21.<district>.1, communes 10.21.<district>.<10+n>.
    """
    routers = [(f"bg-{code}", name, f"10.20.1.{10 + i}") for i, (code, name) in enumerate(DEPARTMENTS)]
    for d, (code, name_vi, _name_en, communes) in enumerate(DISTRICTS, start=1):
        routers.append((f"bg-{code}", name_vi, f"10.21.{d}.1"))
        short = name_vi.removeprefix("Huyện ")
        routers += [(f"bg-{code}-{i:02d}", f"Xã số {i:02d} ({short})", f"10.21.{d}.{10 + i}")
                    for i in range(1, communes + 1)]
    return routers


def wan_targets() -> dict:
    targets = []
    for unit, name, address in wan_routers():
        targets.append({"id": f"{unit}-icmp", "unit": unit, "collector": "icmp",
                        "name": f"Đường truyền WAN: {name} (ICMP)", "tags": ["wan_link"],
                        "params": {"host": address}})
        targets.append({"id": f"{unit}-snmp", "unit": unit, "collector": "snmp",
                        "name": f"Bộ định tuyến WAN: {name} (SNMP)", "tags": ["wan_link"],
                        "params": {"host": address, "community": "env:EGOV_SNMP_COMMUNITY",
                                   "interface": {"name": UPLINK}}})
    return {"targets": targets}


def write(name: str, data: dict, header: str) -> None:
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write(header)
        yaml.safe_dump(data, out, allow_unicode=True, sort_keys=False, width=120)


if __name__ == "__main__":
    note = ("# Generated by scripts/gen_bac_giang.py; edit the script, not this file.\n"
            "# generated: true marks names invented for lack of the official list.\n")
    write("units.yml", units(), note)
    write("thdl.yml", thdl_targets(),
          note + "# Addresses stand for the province's network: never probe them from a test machine.\n")
    write("wan.yml", wan_targets(),
          note + "# Addresses stand for the province's network: never probe them from a test machine.\n"
          "# One router per unit: <unit>-icmp and <unit>-snmp share its address (tag wan_link).\n")
    print(f"wrote {OUT}/units.yml, thdl.yml and wan.yml")
