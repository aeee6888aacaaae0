"""--shard I/N: agents split the units between them, and their numerators and denominators add up."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.exposition import parse_samples
from support.paths import AGENT, REPO
from support.province import Province, count, coverage

from agent.engine.sharding import Shard


def province(up: int, down: int) -> Province:
    """District d1: communes c00..c39 with one WAN link each (every fifth at port ``down``), and a commune
    without any link; the coverage, a count and a manual KPI."""
    p = Province(code="t", levels=["province", "district", "commune"], root_name_vi="P")
    p.unit("d1", level="district")
    for i in range(40):
        p.unit(f"c{i:02d}", f"Xã {i}", parent="d1")
        p.target(f"t{i:02d}", f"c{i:02d}", "tcp", tags=["wan_link"],
                 params={"host": "127.0.0.1", "port": up if i % 5 else down})
    p.unit("c-no-link", "Xã không kết nối", parent="d1")
    p.collector("tcp", interval="10s", timeout="2s").section("manual", {"file": "manual.csv"})
    p.kpi("communes", coverage(tags=["wan_link"], level="commune", group_by="district"))
    p.kpi("links_up", count(collector="tcp"), unit="count")
    return p.kpi("survey", {"kind": "ratio"}, kpi_class="manual")


def test_parse() -> None:
    assert Shard.parse("2/3") == Shard(2, 3)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError):
            Shard.parse(bad)


def test_every_unit_belongs_to_exactly_one_shard() -> None:
    units = [f"bg-hh-{i:02d}" for i in range(230)]
    shards = [Shard(i, 3) for i in (1, 2, 3)]
    owners = [[s for s in shards if s.owns_unit(u)] for u in units]
    assert all(len(o) == 1 for o in owners)
    assert all(40 < sum(1 for o in owners if o[0] is s) < 120 for s in shards)  # a rough balance


def test_shards_add_up_to_the_whole(tmp_path: Path, tcp_peers) -> None:
    (tmp_path / "manual.csv").write_text("kpi,date,source,value\nsurvey,2026-01-01,SIPAS,80%\n", encoding="utf-8")
    path = province(tcp_peers.listening("127.0.0.1"), tcp_peers.closed("127.0.0.1")).write(tmp_path / "c.yml")

    def once(*extra: str) -> dict:
        result = subprocess.run([*AGENT, "once", "--config", str(path), "--format", "prometheus", *extra],
                                capture_output=True, text=True, cwd=REPO, timeout=120)
        assert result.returncode == 0, result.stderr
        return parse_samples(result.stdout)

    def value(samples: dict, name: str, **labels: str) -> float:
        hits = [v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()]
        return sum(hits)

    whole = once()
    parts = [once("--shard", "1/2"), once("--shard", "2/2")]
    # 41 communes (one without a link), 32 of the 40 links up.
    assert (value(whole, "egov_kpi_numerator", kpi="communes"), value(whole, "egov_kpi_denominator", kpi="communes")) \
        == (32, 41)
    for name in ("egov_kpi_numerator", "egov_kpi_denominator", "egov_kpi_group_numerator",
                 "egov_kpi_group_denominator"):
        assert sum(value(p, name, kpi="communes") for p in parts) == value(whole, name, kpi="communes"), name
    assert sum(value(p, "egov_kpi_value", kpi="links_up") for p in parts) == value(whole, "egov_kpi_value",
                                                                                    kpi="links_up") == 32
    assert all(value(p, "egov_kpi_denominator", kpi="communes") > 0 for p in parts)  # both shards have work
    # The manual KPI is evaluated once, by shard 1.
    assert value(parts[0], "egov_kpi_value", kpi="survey") == pytest.approx(0.8)
    assert not [k for k in parts[1] if k[0] == "egov_kpi_value" and ("kpi", "survey") in k[1]]
    bad = subprocess.run([*AGENT, "once", "--config", str(path), "--shard", "3/2"], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert bad.returncode == 2 and "--shard" in bad.stderr
