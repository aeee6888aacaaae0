#!/usr/bin/env python3
"""The WAN benchmark's province and its lab: routers, which of them are dead, and the agent's configuration.

Two shapes: Bắc Giang as configured (``config/provinces/bac-giang.yml``: its unit tree and its 262
WAN routers, each with an ``-icmp`` and an ``-snmp`` target on one address), and a generated
province ``scale`` times that size (``scale × 10`` districts of 23 communes, ``scale × 22``
departments: 2,620 routers at 10×). A share of the routers is dead: nftables drops their ICMP echo
requests and their SNMP agent never answers, as for a cut fibre.

Run as a script, this module is the lab process: it reads the routers (JSON, one line on stdin),
starts the lab's own simulators (agent/lab/icmp.py, agent/lab/snmp.py) for them on 127.77.0.0/16,
prints each router's loopback endpoint (one JSON line) and serves until stdin closes. It runs apart
from the agent and the exporters so the CPU of each process is its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.config.yamlsource import load_document  # noqa: E402
from collectors.icmp.lab import IcmpSimulator  # noqa: E402
from collectors.lab_addresses import AddressPool  # noqa: E402
from collectors.snmp.lab import SnmpSimulator  # noqa: E402

BAC_GIANG = REPO / "config" / "provinces" / "bac-giang.yml"
UPLINK = "GigabitEthernet0/0/0"  # the lab routers' WAN uplink, ifIndex 1


@dataclass
class Router:
    """One WAN router: its unit, its two targets, the address the province configures for it."""

    key: str  # the configured (never probed) address; the lab maps it to a loopback address
    unit: str
    icmp_id: str
    snmp_id: str
    name: str
    up: bool = True
    # Filled from the lab: where the simulated router answers.
    host: str = ""
    snmp_port: int = 0
    community: str = ""  # a secret reference (file:...), as the agent's configuration takes it


@dataclass
class Province:
    label: str
    document: dict[str, Any]  # province, levels, units, collectors (icmp, snmp) for the agent's config
    routers: list[Router]


def bac_giang() -> Province:
    """Bắc Giang as shipped: the units and the WAN targets (tag ``wan_link``) of config/provinces/bac-giang.yml."""
    data = load_document(BAC_GIANG).data
    routers: dict[str, Router] = {}
    names: dict[str, str] = {}
    for target in data["targets"]:
        if target["collector"] not in ("icmp", "snmp") or "wan_link" not in target.get("tags", []):
            continue  # other ICMP targets (video conference codecs...) are not WAN links
        host = str(target["params"]["host"])
        router = routers.setdefault(host, Router(host, target["unit"], "", "", ""))
        if target["collector"] == "icmp":
            router.icmp_id = target["id"]
        else:
            router.snmp_id = target["id"]
        names[target["id"]] = target.get("name") or ""
    for router in routers.values():
        if not (router.icmp_id and router.snmp_id):
            raise SystemExit(f"bac-giang.yml: router {router.key} lacks an icmp or snmp target")
        router.name = names[router.icmp_id]
    document = {key: data[key] for key in ("province", "levels", "units")}
    document["collectors"] = {k: data["collectors"][k] for k in ("icmp", "snmp")}
    return Province(f"Bắc Giang as configured ({len(routers)} links)", document, list(routers.values()))


def generated(scale: int, collectors: dict[str, Any]) -> Province:
    """A province shaped like Bắc Giang, ``scale`` times its size, with Bắc Giang's collector settings."""
    code = "bx"
    districts, routers = [], []
    for d in range(1, 10 * scale + 1):
        district = f"{code}-h{d:03d}"
        communes = [{"id": f"{district}-{c:02d}", "name_vi": f"Xã {c:02d} (huyện {d:03d})", "level": "commune",
                     "generated": True} for c in range(1, 24)]
        districts.append({"id": district, "name_vi": f"Huyện {d:03d}", "level": "district", "generated": True,
                          "children": communes})
    departments = [{"id": f"{code}-s{s:03d}", "name_vi": f"Sở {s:03d}", "level": "department", "generated": True}
                   for s in range(1, 22 * scale + 1)]
    units = [*departments, *districts, *[c for d in districts for c in d["children"]]]
    for i, unit in enumerate(units):
        key = f"10.{90 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}"  # never probed: the lab maps it to loopback
        routers.append(Router(key, unit["id"], f"{unit['id']}-icmp", f"{unit['id']}-snmp",
                              f"Đường truyền WAN: {unit['name_vi']}"))
    document = {
        "province": {"code": code, "name_vi": f"Tỉnh mô phỏng ({scale}× Bắc Giang)",
                     "name_en": f"Generated province ({scale}x Bac Giang)", "timezone": "Asia/Ho_Chi_Minh"},
        "levels": ["province", "district", "commune", "department"],
        "units": [{"id": code, "name_vi": "Tỉnh mô phỏng", "level": "province", "generated": True,
                   "children": [*departments, *districts]}],
        "collectors": collectors,
    }
    return Province(f"generated, {scale}× Bắc Giang ({len(routers)} links)", document, routers)


def kill_some(routers: list[Router], share: float, seed: int = 59) -> None:
    """Mark round(share × n) routers dead, drawn with a fixed seed so runs compare."""
    for router in random.Random(seed).sample(routers, round(share * len(routers))):
        router.up = False


def agent_config(province: Province, snmp_all_interfaces: bool, echoes: int | None) -> dict[str, Any]:
    """The agent's configuration: the province's units and collector settings, targets at the lab's routers.

    Targets tagged ``wan_link`` are the province's (``echoes`` overrides the ICMP count, default as
    shipped); each router also gets an ICMP target tagged ``one_echo`` sending a single echo, the
    blackbox exporter's work per probe, run in a cycle of its own for a like-for-like comparison.
    """
    document = json.loads(json.dumps(province.document, default=str))  # a deep copy, dates as text
    if snmp_all_interfaces:
        document["collectors"]["snmp"].setdefault("settings", {})["all_interfaces"] = True
    targets = []
    for r in province.routers:
        icmp: dict[str, Any] = {"host": r.host} if echoes is None else {"host": r.host, "count": echoes}
        common = {"unit": r.unit, "name": r.name}
        targets.append({"id": r.icmp_id, "collector": "icmp", **common, "tags": ["wan_link"], "params": icmp})
        targets.append({"id": r.snmp_id, "collector": "snmp", **common, "tags": ["wan_link"],
                        "params": {"host": r.host, "port": r.snmp_port, "community": r.community,
                                   "interface": {"name": UPLINK}}})
        targets.append({"id": f"{r.icmp_id}-1", "collector": "icmp", **common, "tags": ["one_echo"],
                        "params": {"host": r.host, "count": 1}})
    document["targets"] = targets
    return document


def write_yaml(data: dict[str, Any], path: Path) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


# --- the lab process ------------------------------------------------------------------------


async def serve(routers: list[dict[str, Any]], network: str | None = None) -> None:
    pool = AddressPool(ipaddress.ip_network(network)) if network else AddressPool()
    icmp, snmp = IcmpSimulator(pool), SnmpSimulator(pool)
    started = time.perf_counter()
    try:
        endpoints = {}
        for r in routers:
            up = bool(r["up"])
            addr = (await icmp.add(r["icmp_id"], {"host": r["key"]}, up))["host"]
            params = await snmp.add(r["snmp_id"], {"host": r["key"], "community": "env:EGOV_SNMP_COMMUNITY"}, up)
            if params["host"] != addr:
                raise SystemExit(f"lab: {r['key']} got two addresses")
            endpoints[r["key"]] = {"host": addr, "port": params["port"], "community": params["community"]}
        dead_icmp = [t for t, s in icmp.states().items() if s == "down"]
        print(json.dumps({"endpoints": endpoints, "startup": time.perf_counter() - started,
                          "dead_icmp": len(dead_icmp), "icmp_faults": icmp.faults is not None}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    finally:
        await icmp.close()  # removes the lab's nftables table
        await snmp.close()


def start_lab(routers: list[Router], timeout: float = 120.0, network: str | None = None):
    """Start the lab process for ``routers`` (on ``network``, default 127.77.0.0/16); fill in their
    endpoints; return the process (stdin open)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, __file__, *([network] if network else [])], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps([asdict(r) for r in routers]) + "\n")
    proc.stdin.flush()
    line = _readline(proc, timeout)
    if not line:
        proc.kill()
        raise SystemExit(f"the lab did not start (exit {proc.wait(10)})")
    ready = json.loads(line)
    for r in routers:
        e = ready["endpoints"][r.key]
        r.host, r.snmp_port, r.community = e["host"], e["port"], e["community"]
    return proc, ready


def _readline(proc, timeout: float) -> str:
    import threading

    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return out[0] if out else ""


def stop_lab(proc, timeout: float = 60.0) -> None:
    """Close its stdin (the lab closes its sockets and deletes its nftables table), kill it if it hangs."""
    import subprocess

    try:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


if __name__ == "__main__":
    spec = json.loads(sys.stdin.readline())
    asyncio.run(serve(spec, sys.argv[1] if len(sys.argv) > 1 else None))
