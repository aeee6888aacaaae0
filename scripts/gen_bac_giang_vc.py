#!/usr/bin/env python3
"""Generate config/provinces/bac-giang/vc.yml: Bắc Giang's video-conference MCU and endpoints (điểm cầu).

KH59 §I.1 lists where the meeting points are: at the province «các cơ quan Tỉnh ủy, Hội đồng nhân
dân, UBND tỉnh, Trung tâm Hội nghị tỉnh, Hội trường khu liên cơ quan, các phòng làm việc của
Thường trực Tỉnh ủy-HĐND-UBND tỉnh»; «Văn phòng HĐND và UBND huyện, thành phố» in each of the 10
districts; «230/230 UBND xã, phường, thị trấn»; and «thành phố Bắc Giang có thêm điểm cầu tại Thành
ủy». That makes at least 6 + 10 + 230 + 1 = 247 endpoints (the standing committees' offices, plural
in the plan, count as one here). The plan names no MCU product and no addresses.

Each endpoint gets two targets sharing its codec's address: ``<id>-sip`` (SIP OPTIONS, the readiness
the KPIs count; tags ``vc_endpoint`` and ``vc_province``/``vc_district``/``vc_commune``/``vc_party``)
and ``<id>-icmp`` (reachability, tag ``vc_codec``, to tell a dead link from a dead codec). The MCU
at the data integration centre is read over SNMP with placeholder enterprise OIDs (under the
invented 1.3.6.1.4.1.59059), which report ports and registrations, unlike Jitsi Videobridge's API:
replace them with the vendor's OIDs (or its API: adapter http) once the province's MCU is known.
The provincial and district endpoints are expected to be registered on it.

Addresses (a video-conference network 10.25.0.0/16, invented): the MCU 10.25.0.10, provincial sites
10.25.0.20+, district d's PC 10.25.<d>.10 (Thành ủy 10.25.1.11), its communes 10.25.<d>.<20+n>.
They stand for the province's network: validated (``egov-agent check-config``), never probed here.

Run: python3 scripts/gen_bac_giang_vc.py  (rewrites vc.yml; run gen_bac_giang.py first)
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "config" / "provinces" / "bac-giang"
PROVINCE_UNIT = "bg"
MCU_UNIT = "bg-thdl"
MCU_ADDRESS = "10.25.0.10"
CITY = "bg-tp"  # Thành phố Bắc Giang: the district with the extra endpoint at the Thành ủy

# KH59 §I.1, province level: (id, unit, name). Units: the HĐND and UBND sites belong to
# their offices; the Party committee and the shared halls are not units of the state tree, so they
# hang on the province. Transport TCP at the provincial halls is an assumption (generated).
PROVINCIAL_SITES = [
    ("tinh-uy", PROVINCE_UNIT, "Điểm cầu Tỉnh ủy Bắc Giang"),
    ("hdnd", "bg-vp-hdnd", "Điểm cầu Hội đồng nhân dân tỉnh"),
    ("ubnd", "bg-vp-ubnd", "Điểm cầu UBND tỉnh"),
    ("trung-tam-hoi-nghi", PROVINCE_UNIT, "Điểm cầu Trung tâm Hội nghị tỉnh"),
    ("hoi-truong-lien-co-quan", PROVINCE_UNIT, "Điểm cầu Hội trường khu liên cơ quan"),
    ("thuong-truc", PROVINCE_UNIT, "Điểm cầu phòng làm việc Thường trực Tỉnh ủy-HĐND-UBND tỉnh"),
]


MCU_OIDS = [("active_conferences", "1.1.0"), ("ports_in_use", "1.2.0"), ("ports_total", "1.3.0"),
            ("registered_endpoints", "1.4.0"), ("meetings_held", "1.5.0"), ("largest_conference", "1.6.0"),
            ("endpoint_ids", "2.1.2")]


def q(text: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


MCU_OIDS = [("active_conferences", "1.1.0"), ("ports_in_use", "1.2.0"), ("ports_total", "1.3.0"),
            ("registered_endpoints", "1.4.0"), ("meetings_held", "1.5.0"), ("largest_conference", "1.6.0"),
            ("endpoint_ids", "2.1.2")]


def address(text: str) -> str:
    ip = ipaddress.ip_address(text)
    if ip not in ipaddress.ip_network("10.25.0.0/16"):
        raise SystemExit(f"{text} is outside the video-conference network 10.25.0.0/16")
    return str(ip)


MCU_OIDS = [("active_conferences", "1.1.0"), ("ports_in_use", "1.2.0"), ("ports_total", "1.3.0"),
            ("registered_endpoints", "1.4.0"), ("meetings_held", "1.5.0"), ("largest_conference", "1.6.0"),
            ("endpoint_ids", "2.1.2")]


def endpoints(units: list[dict]) -> list[tuple[str, str, str, str, str, str]]:
    """(target id prefix, unit, name, address, scope tag, transport) of every endpoint."""
    province = next(u for u in units if u["id"] == PROVINCE_UNIT)
    out = [(f"bg-vc-{site}", unit, name, address(f"10.25.0.{20 + i}"), "vc_province", "tcp")
           for i, (site, unit, name) in enumerate(PROVINCIAL_SITES)]
    districts = [u for u in province.get("children", []) if u["level"] == "district"]
    if len(districts) != 10:
        raise SystemExit(f"expected 10 districts in units.yml, found {len(districts)}")
    communes = 0
    for d, district in enumerate(districts, start=1):
        name = district["name_vi"]
        out.append((f"{district['id']}-vc", district["id"], f"Điểm cầu Văn phòng HĐND và UBND {name}",
                    address(f"10.25.{d}.10"), "vc_district", "udp"))
        if district["id"] == CITY:
            out.append((f"{CITY}-vc-thanh-uy", CITY, "Điểm cầu Thành ủy Bắc Giang", address(f"10.25.{d}.11"),
                        "vc_party", "udp"))
        for n, commune in enumerate((c for c in district.get("children", []) if c["level"] == "commune"), start=1):
            out.append((f"{commune['id']}-vc", commune["id"], f"Điểm cầu UBND {commune['name_vi']}",
                        address(f"10.25.{d}.{20 + n}"), "vc_commune", "udp"))
            communes += 1
    if communes != 230:
        raise SystemExit(f"expected 230 communes in units.yml, found {communes}")
    return out


MCU_OIDS = [("active_conferences", "1.1.0"), ("ports_in_use", "1.2.0"), ("ports_total", "1.3.0"),
            ("registered_endpoints", "1.4.0"), ("meetings_held", "1.5.0"), ("largest_conference", "1.6.0"),
            ("endpoint_ids", "2.1.2")]


def render(units: list[dict]) -> str:
    found = endpoints(units)
    lines = [
        "# Generated by scripts/gen_bac_giang_vc.py; edit the script, not this file.",
        "# Video conference (hội nghị truyền hình): the MCU at the THDL and the endpoints (điểm cầu) KH59 §I.1",
        f"# lists: {sum(1 for e in found if e[4] == 'vc_province')} provincial sites, 10 district PCs, the Thành ủy "
        f"of Bắc Giang city, 230 communes ({len(found)} in all).",
        "# Each endpoint: <id>-sip (SIP OPTIONS; the readiness KPIs count it) and <id>-icmp on the same address.",
        "# Addresses (10.25.0.0/16) and the MCU product are invented: the plan gives neither. Validated, never",
        "# probed from a test machine.",
        "targets:",
        f"- id: {MCU_UNIT}-mcu  # generated: product and address",
        f"  unit: {MCU_UNIT}",
        "  collector: mcu",
        f"  name: {q('MCU hội nghị truyền hình trực tuyến (Trung tâm THDL)')}",
        "  tags: [vc_mcu]",
        "  params:",
        "    adapter: snmp",
        f"    host: {MCU_ADDRESS}",
        "    community: env:EGOV_SNMP_COMMUNITY",
        "    oids:  # generated: placeholders for the vendor's MIB",
        *[f"      {quantity}: 1.3.6.1.4.1.59059.{oid}" for quantity, oid in MCU_OIDS],
        "    expected_endpoints:",
        *[f"      - {prefix}-sip" for prefix, _unit, _name, _host, scope, _t in found
          if scope in ("vc_province", "vc_district")],
    ]
    for prefix, unit, name, host, scope, transport in found:
        lines += [
            f"- id: {prefix}-sip",
            f"  unit: {unit}",
            "  collector: sip",
            f"  name: {q(name + ' (SIP)')}",
            f"  tags: [vc_endpoint, {scope}]",
            "  params:",
            f"    host: {host}",
        ]
        if transport != "udp":
            lines.append(f"    transport: {transport}  # generated")
        lines += [
            f"- id: {prefix}-icmp",
            f"  unit: {unit}",
            "  collector: icmp",
            f"  name: {q(name + ' (ICMP)')}",
            "  tags: [vc_codec]",
            "  params:",
            f"    host: {host}",
        ]
    return "\n".join(lines) + "\n"


MCU_OIDS = [("active_conferences", "1.1.0"), ("ports_in_use", "1.2.0"), ("ports_total", "1.3.0"),
            ("registered_endpoints", "1.4.0"), ("meetings_held", "1.5.0"), ("largest_conference", "1.6.0"),
            ("endpoint_ids", "2.1.2")]


def main() -> None:
    units = yaml.safe_load((OUT / "units.yml").read_text(encoding="utf-8"))["units"]
    text = render(units)
    data = yaml.safe_load(text)  # must parse
    ids = [t["id"] for t in data["targets"]]
    if len(ids) != len(set(ids)):
        raise SystemExit("duplicate target ids")
    (OUT / "vc.yml").write_text(text, encoding="utf-8")
    print(f"wrote {OUT / 'vc.yml'}: {len(ids)} targets")


if __name__ == "__main__":
    main()
