"""A province configuration built in code and written as YAML, so that a test states only what matters to it.

The defaults make a valid province (code ``test``, root unit ``p``); every call adds one thing: a unit, a
collector's settings, a target, a KPI, or a top-level section (``sources``, ``manual``, ``reporting``,
``web``...). What it writes is what ``agent.config.load_config`` reads: the builder checks nothing itself,
so a test of a configuration error builds the bad value and lets the agent refuse it.

    p = Province(levels=["province", "commune"])
    p.unit("c1", "Xã Một", level="commune")
    p.collector("tcp", interval="10s", timeout="2s")
    p.target("c1-link", unit="c1", collector="tcp", tags=["wan_link"], params={"host": "127.0.0.1", "port": 1})
    p.kpi("communes", coverage(tags=["wan_link"], level="commune"))
    path = p.write(tmp_path / "province.yml")

Tests about the YAML text itself (parse errors, error messages quoting line numbers) keep their YAML inline.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support.paths import REPO

SELECTOR_KEYS = ("collector", "tags", "level", "under")


def write_config(path: Path, body: str) -> Path:
    """Inline YAML as a file (dedented), for the tests that keep their configuration's text."""
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def ops_target(value: str | float = "90%", comparator: str = ">=", deadline: str = "2030-12-31",
               phase: str = "ops", **fields: Any) -> dict[str, Any]:
    """A KPI target of the ops team's own (origin ops), so the KPI needs no plan citation."""
    return {"phase": phase, "deadline": deadline, "comparator": comparator, "value": value, "origin": "ops", **fields}


def _measure(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    select = {k: v for k, v in fields.items() if k in SELECTOR_KEYS and v is not None}
    rest = {k: v for k, v in fields.items() if k not in SELECTOR_KEYS}
    return {"kind": kind, "select": select, **rest}


def coverage(**fields: Any) -> dict[str, Any]:
    """A coverage measure: selector keys (collector, tags, level, under) go under ``select``, the rest beside."""
    return _measure("coverage", fields)


def availability(**fields: Any) -> dict[str, Any]:
    return _measure("availability", fields)


def count(**fields: Any) -> dict[str, Any]:
    return _measure("count", fields)


@dataclass
class Province:
    """One province: a root unit, the units below it, collectors, targets, KPIs and any other section."""

    code: str = "test"
    name_vi: str = "Tỉnh Thử"
    name_en: str = "Test Province"
    levels: list[str] | None = None  # None: the levels in the order the units first use them
    root: str = "p"
    root_name_vi: str | None = None  # the root unit's name; the province's by default
    province_fields: dict[str, Any] = field(default_factory=dict)  # e.g. timezone
    own_units: bool = True  # False: the units come from an ``include`` (a shipped province's units.yml)
    units: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    collectors: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    targets: list[dict[str, Any]] = field(default_factory=list, init=False)
    kpis: list[dict[str, Any]] = field(default_factory=list, init=False)
    sections: dict[str, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        name = self.root_name_vi or self.name_vi
        self.units[self.root] = {"id": self.root, "name_vi": name, "level": "province", "children": []}

    def unit(self, unit_id: str, name_vi: str | None = None, level: str = "commune", parent: str | None = None,
             **fields: Any) -> Province:
        """A unit below ``parent`` (the root by default); its Vietnamese name defaults to its id."""
        node = {"id": unit_id, "name_vi": name_vi or unit_id, "level": level, **fields, "children": []}
        self.units[parent or self.root]["children"].append(node)
        self.units[unit_id] = node
        return self

    def each_unit(self, ids: Iterable[str], level: str = "commune", parent: str | None = None) -> Province:
        for unit_id in ids:
            self.unit(unit_id, level=level, parent=parent)
        return self

    def collector(self, kind: str, **spec: Any) -> Province:
        """A collector's section (interval, timeout, concurrency, down_after, settings...)."""
        self.collectors[kind] = spec
        return self

    def target(self, target_id: str, unit: str, collector: str, params: Mapping[str, Any] | None = None,
               tags: Iterable[str] = (), **fields: Any) -> Province:
        entry: dict[str, Any] = {"id": target_id, "unit": unit, "collector": collector, **fields}
        if tags:
            entry["tags"] = list(tags)
        entry["params"] = dict(params or {})
        self.targets.append(entry)
        return self

    def kpi(self, kpi_id: str, measure: Mapping[str, Any], targets: list[dict[str, Any]] | None = None,
            kpi_class: str = "direct", title_vi: str | None = None, title_en: str | None = None,
            **fields: Any) -> Province:
        """A KPI titled by its id; no target unless given (``ops_target()`` needs no citation)."""
        entry = {"id": kpi_id, "class": kpi_class, "title_vi": title_vi or kpi_id, "title_en": title_en or kpi_id,
                 **fields, "measure": dict(measure)}
        if targets is not None:
            entry["targets"] = targets
        self.kpis.append(entry)
        return self

    def section(self, key: str, value: Any) -> Province:
        """Any other top-level section as it is: ``sources``, ``manual``, ``reporting``, ``web``, ``include``..."""
        self.sections[key] = value
        return self

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "province": {"code": self.code, "name_vi": self.name_vi, "name_en": self.name_en,
                         **self.province_fields},
            "levels": self.levels if self.levels is not None else self._levels_used(),
        }
        if self.own_units:
            body["units"] = [_pruned(self.units[self.root])]
        if self.collectors:
            body["collectors"] = self.collectors
        if self.targets:
            body["targets"] = self.targets
        if self.kpis:
            body["kpis"] = self.kpis
        return {**body, **self.sections}

    def yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False, width=120)

    def write(self, path: Path) -> Path:
        path.write_text(self.yaml(), encoding="utf-8")
        return path

    def _levels_used(self) -> list[str]:
        levels: list[str] = []
        for node in self.units.values():
            if node["level"] not in levels:
                levels.append(node["level"])
        return levels


def _pruned(node: dict[str, Any]) -> dict[str, Any]:
    """The unit as YAML wants it: no empty ``children`` list."""
    out = {k: v for k, v in node.items() if k != "children"}
    if node["children"]:
        out["children"] = [_pruned(child) for child in node["children"]]
    return out


def thdl_site() -> Province:
    """The root and one site under it, the data integration centre (THDL), where the tests' systems sit."""
    return Province().unit("thdl", "Trung tâm THDL", level="site")


def one_system(port: int = 1, interval: str = "1s", timeout: str = "0.5s") -> Province:
    """The THDL with one TCP system, sys-a on 127.0.0.1:``port`` (1: nothing listens, the probe is refused)."""
    p = thdl_site().collector("tcp", interval=interval, timeout=timeout)
    return p.target("sys-a", "thdl", "tcp", params={"host": "127.0.0.1", "port": port})


def bac_giang(*files: str) -> Province:
    """Bắc Giang's shipped units and the given files of config/provinces/bac-giang/, included as they are."""
    p = Province(code="bac-giang", name_vi="Tỉnh Bắc Giang", name_en="Bac Giang Province", own_units=False,
                 levels=["province", "district", "commune", "department", "site"])
    folder = REPO / "config" / "provinces" / "bac-giang"
    return p.section("include", [str(folder / name) for name in ("units.yml", *files)])


def commune_routers(network: str, routers: int, count: int, interval: float) -> Province:
    """Communes c1..cN, each with its router rN at ``network``.N pinged ``count`` times, up while half the
    echoes come back; and their WAN coverage (no target). The province of the lab's ICMP tests."""
    p = Province().collector("icmp", timeout="800ms", settings={"up_rule": {"max_loss": 0.5, "over_probes": 1}})
    for i in range(1, routers + 1):
        p.unit(f"c{i}", f"Xã {i}")
        p.target(f"r{i}", f"c{i}", "icmp", params={"host": f"{network}.{i}", "count": count, "interval": interval})
    return p.kpi("wan_commune_coverage", coverage(collector="icmp", level="commune"),
                 title_vi="Tỷ lệ xã kết nối mạng WAN", title_en="Communes connected to the WAN")


def web_config(path: Path, cert_file: str | Path | None = None, key_file: str | Path | None = None,
               users: Mapping[str, str] | None = None, **sections: Any) -> Path:
    """The web configuration file (exporter-toolkit's format, as node_exporter reads it): TLS from
    ``cert_file`` and ``key_file``, basic auth for ``users`` (name: bcrypt hash), other sections as they are."""
    body: dict[str, Any] = {}
    if cert_file is not None:
        body["tls_server_config"] = {"cert_file": str(cert_file), "key_file": str(key_file)}
    if users:
        body["basic_auth_users"] = dict(users)
    body.update(sections)
    path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def thdl_systems(ports: dict[str, int], down: tuple[str, int], process: str, interval: str = "3s",
                 timeout: str = "2s", site_name: str = "Trung tâm THDL") -> Province:
    """Four TCP systems at the THDL (sys-a..c on ``ports``, sys-d at ``down``) and two host checks, one of
    ``process`` and one of a daemon that does not exist; a plan KPI over the systems and an ops count
    (test_agent, and the status page's test)."""
    p = Province(levels=["province", "district", "site"])
    p.unit("d1", "Huyện Một", level="district").unit("thdl", site_name, level="site", parent="d1")
    p.collector("tcp", interval=interval, timeout=timeout, concurrency=8)
    p.collector("host", interval="5s", timeout="4s")
    hosts = [(f"127.0.0.{i}", ports[f"up{i}"]) for i in (1, 2, 3)] + [down]
    for name, (host, port) in zip("abcd", hosts, strict=True):
        p.target(f"sys-{name}", "thdl", "tcp", tags=["thdl"], params={"host": host, "port": port})
    p.target("host-ok", "thdl", "host", params={"processes": [process]})
    p.target("host-missing", "thdl", "host", params={"processes": ["no-such-daemon-egov"]})
    p.kpi("systems_up", coverage(collector="tcp", tags=["thdl"]), title_vi="Hệ thống hoạt động",
          title_en="Systems up",
          citation={"document": "59/KH-UBND", "date": "2019-03-29", "section": "I.1", "quote": "trên 95 hệ thống"},
          targets=[{"phase": "2019-2020", "deadline": "2020-12-31", "comparator": ">=", "value": "100%"},
                   {"phase": "2021-2030", "deadline": "2030-12-31", "comparator": ">=", "value": "70%"}])
    p.kpi("systems_count", count(collector="tcp"), title_vi="Số hệ thống", title_en="Systems count", unit="count",
          targets=[ops_target(3, ">")])
    return p
