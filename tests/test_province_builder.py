"""The province builder (tests/support/province.py) writes what the agent loads: each shared province
is valid as it comes, and the builder keeps the order it was given (rules and dashboards follow it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.province import (
    Province,
    bac_giang,
    commune_routers,
    coverage,
    one_system,
    ops_target,
    thdl_site,
    web_config,
)

from agent.config.loading import load_config

SHARED = {"root-only": Province(), "thdl": thdl_site(), "one-system": one_system(port=9100),
          "commune-routers": commune_routers("10.20.0", 3, 5, 0.02),
          "bac-giang-portals": bac_giang("portals.yml").collector("http", interval="60s", timeout="15s")}


@pytest.mark.parametrize("made", SHARED.values(), ids=SHARED.keys())
def test_the_shared_provinces_load(made: Province, tmp_path: Path) -> None:
    load_config(made.write(tmp_path / "p.yml"), resolve_secrets=False)


def test_units_targets_and_kpis_keep_their_order_and_levels_follow_the_units(tmp_path: Path) -> None:
    p = Province(code="t").unit("d2", level="district").unit("d1", level="district")
    p.unit("c9", parent="d1").unit("c1", parent="d2")
    p.collector("tcp", interval="10s", timeout="2s")
    for unit in ("c9", "c1"):
        p.target(f"{unit}-link", unit, "tcp", tags=["wan_link"], params={"host": "127.0.0.1", "port": 1})
    p.kpi("b", coverage(tags=["wan_link"], level="commune", group_by="district"), targets=[ops_target("100%", "=")])
    p.kpi("a", coverage(collector="tcp"))
    config = load_config(p.write(tmp_path / "p.yml")).config
    assert config.levels == ["province", "district", "commune"]
    assert [u.id for u in config.units[0].children] == ["d2", "d1"]
    assert [t.id for t in config.targets] == ["c9-link", "c1-link"]
    assert [k.id for k in config.kpis] == ["b", "a"]
    assert config.kpis[0].measure.select.level == "commune" and config.kpis[0].measure.group_by == "district"
    assert [t.origin for t in config.kpis[0].targets] == ["ops"] and config.kpis[1].targets == []


def test_the_web_config_is_the_exporter_toolkit_file(tmp_path: Path) -> None:
    path = web_config(tmp_path / "web.yml", "server.pem", "server.key", {"prometheus": "$2b$04$hash"},
                      rate_limit={"burst": 3, "interval": "1m"})
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == {
        "tls_server_config": {"cert_file": "server.pem", "key_file": "server.key"},
        "basic_auth_users": {"prometheus": "$2b$04$hash"}, "rate_limit": {"burst": 3, "interval": "1m"}}
