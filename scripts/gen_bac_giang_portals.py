#!/usr/bin/env python3
"""Generate config/provinces/bac-giang/portals.yml: Bắc Giang's portals and e-government web systems.

KH59 §I.2 counts them: the province's central portal and «40 Công thông tin điện tử thành phần»
of the departments, agencies of the PPC and district PCs, plus the public-service portal (Cổng
dịch vụ công), the one-stop system and the document-management system (QLVB). The plan names no
URLs and no list of the 40. Here: one component portal per department and per district read from
units.yml (so the unit ids stay those of scripts/gen_bac_giang.py), and 8 more PPC agencies to
make 40, attached to the province unit. Names and host names the plan does not give are marked
``# generated``. The host names stand for the province's real services: the configuration is
validated (``egov-agent check-config``), never probed from a test machine.

Every component portal is checked for the sections Decree 43/2011/NĐ-CP Art. 10 requires (KH59
§II.1.2.1 asks that 100% of them publish them in full) by short, case-insensitive keywords that
survive each portal's own menu wording.

Run: python3 scripts/gen_bac_giang_portals.py  (rewrites portals.yml; run gen_bac_giang.py first)
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "config" / "provinces" / "bac-giang"
DOMAIN = "bacgiang.gov.vn"
PROVINCE_UNIT = "bg"
SITE_UNIT = "bg-thdl"  # the web systems run at the data integration centre

# Decree 43/2011/NĐ-CP Art. 10, one keyword per required item (as portals title their menus).
ND43_KEYWORDS = [
    ("Giới thiệu", "a) thông tin giới thiệu: cơ cấu tổ chức, chức năng, nhiệm vụ"),
    ("Tin tức", "b) tin tức, sự kiện"),
    ("Chỉ đạo", "c) thông tin chỉ đạo, điều hành"),
    ("Pháp luật", "d) tuyên truyền, phổ biến, hướng dẫn thực hiện pháp luật"),
    ("Quy hoạch", "đ) chiến lược, định hướng, quy hoạch, kế hoạch phát triển"),
    ("Văn bản", "e) hệ thống văn bản quy phạm pháp luật, văn bản quản lý hành chính"),
    ("Dự án", "g) dự án, hạng mục đầu tư, đấu thầu, mua sắm công"),
    ("Ý kiến", "h) mục lấy ý kiến góp ý của tổ chức, cá nhân"),
    ("Liên hệ", "i) thông tin liên hệ của cán bộ, công chức có thẩm quyền"),
]

# PPC agencies beyond the 22 departments, to reach the plan's 40 component portals: invented.
EXTRA_AGENCIES = [
    ("hcc", "Trung tâm Phục vụ hành chính công tỉnh"),
    ("truong-chinh-tri", "Trường Chính trị tỉnh"),
    ("quy-dtpt", "Quỹ Đầu tư phát triển tỉnh"),
    ("xtdt", "Trung tâm Xúc tiến đầu tư tỉnh"),
    ("lmhtx", "Liên minh Hợp tác xã tỉnh"),
    ("bao-bg", "Báo Bắc Giang"),
    ("bqlda-dd", "Ban Quản lý dự án đầu tư xây dựng các công trình dân dụng và công nghiệp tỉnh"),
    ("bqlda-gt", "Ban Quản lý dự án đầu tư xây dựng các công trình giao thông, nông nghiệp tỉnh"),
]
COMPONENT_PORTALS = 40

# (id, unit, name, URL, tags, checks, generated?)
WEB_SYSTEMS = [
    ("web-dvc", "Cổng dịch vụ công trực tuyến tỉnh Bắc Giang", f"https://dichvucong.{DOMAIN}/",
     ["egov_system", "dvc_portal"], {"contains": ["Dịch vụ công", "Thủ tục hành chính"]}),
    ("web-mot-cua", "Hệ thống thông tin một cửa điện tử tỉnh", f"https://motcua.{DOMAIN}/",
     ["egov_system", "one_stop"], {"contains": ["Một cửa"]}),
    ("web-qlvb", "Phần mềm Quản lý văn bản và điều hành công việc", f"https://qlvb.{DOMAIN}/",
     ["egov_system", "document_management"], {"contains": ["Quản lý văn bản"]}),
]


def ascii_slug(text: str) -> str:
    """``Huyện Lục Ngạn`` -> ``lucngan``: host-name labels without diacritics."""
    text = text.replace("đ", "d").replace("Đ", "D")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(ch for ch in folded if ch.isalnum())


def q(text: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def walk(units: list[dict]):
    for unit in units:
        yield unit
        yield from walk(unit.get("children", []))


def component_portals(units: list[dict]) -> list[tuple[str, str, str, str, bool]]:
    """(target id, unit id, portal name, host, generated) for the 40 component portals."""
    out = []
    for level in ("department", "district"):
        for unit in (u for u in walk(units) if u["level"] == level):
            short = unit["id"].removeprefix("bg-")
            name = unit["name_vi"]
            if level == "department":
                label = ascii_slug(short)
            elif name.startswith("Thành phố"):
                label = "tp" + ascii_slug(name.removeprefix("Thành phố "))
            else:
                label = ascii_slug(name.removeprefix("Huyện "))
            out.append((f"portal-{short}", unit["id"], f"Cổng thông tin điện tử {name}", f"{label}.{DOMAIN}",
                        bool(unit.get("generated"))))
    for short, name in EXTRA_AGENCIES[: max(0, COMPONENT_PORTALS - len(out))]:
        out.append((f"portal-{short}", PROVINCE_UNIT, f"Cổng thông tin điện tử {name}",
                    f"{ascii_slug(short)}.{DOMAIN}", True))
    if len(out) != COMPONENT_PORTALS:
        raise SystemExit(f"expected {COMPONENT_PORTALS} component portals, made {len(out)}")
    return out


def render(units: list[dict]) -> str:
    lines = [
        "# Generated by scripts/gen_bac_giang_portals.py; edit the script, not this file.",
        "# Portals and e-government web systems (KH59 §I.2: the provincial portal and «40 Công thông tin",
        "# điện tử thành phần»; the public-service portal, the one-stop system, the document system).",
        "# '# generated' marks a name or host name invented because the plan gives counts, not lists.",
        "# The URLs stand for the province's real services: validated, never probed from a test machine.",
        "targets:",
        "- id: portal-bg",
        f"  unit: {PROVINCE_UNIT}",
        "  collector: http",
        f"  name: {q('Cổng thông tin điện tử tỉnh Bắc Giang')}",
        "  tags: [portal, provincial_portal]",
        "  params:",
        f"    url: https://{DOMAIN}/",
        f"    title: {q('Bắc Giang')}",
        "    ignore_case: true",
        "    contains: &nd43  # Decree 43/2011/NĐ-CP Art. 10, one keyword per required item",
    ]
    for keyword, item in ND43_KEYWORDS:
        lines.append(f"    - {q(keyword)}  # {item}")
    for target_id, unit, name, host, generated_name in component_portals(units):
        mark = "  # generated: host name" + (", name" if generated_name else "")
        short_name = name.removeprefix("Cổng thông tin điện tử ")
        lines += [
            f"- id: {target_id}{mark}",
            f"  unit: {unit}",
            "  collector: http",
            f"  name: {q(name)}",
            "  tags: [portal, component_portal, nd43]",
            "  params:",
            f"    url: https://{host}/",
            f"    title: {q(short_name)}",
            "    ignore_case: true",
            "    contains: *nd43",
        ]
    for target_id, name, url, tags, checks in WEB_SYSTEMS:
        lines += [
            f"- id: {target_id}  # generated: host name",
            f"  unit: {SITE_UNIT}",
            "  collector: http",
            f"  name: {q(name)}",
            f"  tags: [{', '.join(tags)}]",
            "  params:",
            f"    url: {url}",
            "    ignore_case: true",
            f"    contains: [{', '.join(q(c) for c in checks['contains'])}]",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    units = yaml.safe_load((OUT / "units.yml").read_text(encoding="utf-8"))["units"]
    text = render(units)
    yaml.safe_load(text)  # must parse
    (OUT / "portals.yml").write_text(text, encoding="utf-8")
    print(f"wrote {OUT / 'portals.yml'}")


if __name__ == "__main__":
    main()
