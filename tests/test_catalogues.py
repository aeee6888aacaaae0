"""The province catalogues: each validates, and every KPI citation quotes its seed document verbatim.

A citation that drifts from the plan text (a typo fixed, a number rounded) would show operators a
target the plan never set; this keeps every quote tied to ../shared/seeds/. Whitespace runs are
compared as one space (the seeds wrap some paragraphs) and the seeds' Markdown asterisks are
dropped (emphasis, not words); nothing else is normalised.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from agent.config.loading import load_config

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO.parent / "shared" / "seeds"
PROVINCES = sorted((REPO / "config" / "provinces").glob("*.yml"))
CLI = [sys.executable, "-c", "from agent.app.cli import main; raise SystemExit(main())"]


def _flat(text: str) -> str:
    """Whitespace runs as one space; the seeds' Markdown emphasis (``*không bao gồm văn bản mật*``) is markup."""
    return re.sub(r"\s+", " ", text.replace("*", "")).strip()


@pytest.fixture(scope="module", params=PROVINCES, ids=lambda p: p.stem)
def province(request):
    return request.param, load_config(request.param, resolve_secrets=False).config


def test_there_are_four_catalogues():
    assert {p.stem for p in PROVINCES} >= {"bac-giang", "tien-giang", "hung-yen", "kien-giang"}


@pytest.mark.parametrize("path", PROVINCES, ids=lambda p: p.stem)
def test_check_config_passes(path: Path):
    done = subprocess.run([*CLI, "check-config", "--skip-secrets", str(path)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout


def test_kpi_ids_unique(province):
    _path, config = province
    counts = Counter(k.id for k in config.kpis)
    assert [k for k, n in counts.items() if n > 1] == []


def test_plan_targets_have_deadline_and_citation(province):
    _path, config = province
    for kpi in config.kpis:
        plan = [t for t in kpi.targets if t.origin == "plan"]
        if not plan:
            continue
        assert kpi.citation is not None, f"{kpi.id}: plan targets without a citation"
        c = kpi.citation
        assert c.document and c.section and c.quote.strip() and c.seed, f"{kpi.id}: incomplete citation"
        for target in plan:
            assert target.deadline is not None, f"{kpi.id}: {target.phase} has no deadline"


def test_quotes_appear_verbatim_in_their_seed(province):
    if not SEEDS.is_dir():
        pytest.skip(f"the seed documents are not at {SEEDS} (shared/ must sit beside the checkout)")
    _path, config = province
    texts: dict[str, str] = {}
    missing = []
    for kpi in config.kpis:
        c = kpi.citation
        if c is None:
            continue
        assert c.seed, f"{kpi.id}: the citation names no seed file"
        seed = SEEDS / c.seed
        assert seed.is_file(), f"{kpi.id}: seed {c.seed} not found in {SEEDS}"
        if c.seed not in texts:
            texts[c.seed] = _flat(seed.read_text(encoding="utf-8"))
        if _flat(c.quote) not in texts[c.seed]:
            missing.append(f"{kpi.id}: {c.quote!r} not in {c.seed}")
        if c.heading and _flat(c.heading) not in texts[c.seed]:
            missing.append(f"{kpi.id}: heading {c.heading!r} not in {c.seed}")
    assert missing == []


INCLUDES = sorted((REPO / "config" / "provinces").glob("*/*.yml"))


@pytest.mark.parametrize("path", INCLUDES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_include_file_quotes_appear_verbatim(path: Path):
    """The same check on each include file's own KPIs, even one its province does not include yet."""
    if not SEEDS.is_dir():
        pytest.skip(f"the seed documents are not at {SEEDS} (shared/ must sit beside the checkout)")
    kpis = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("kpis") or []
    missing = []
    for kpi in kpis:
        citation = kpi.get("citation")
        if not citation:
            continue
        text = _flat((SEEDS / citation["seed"]).read_text(encoding="utf-8"))
        if _flat(citation["quote"]) not in text:
            missing.append(f"{kpi['id']}: {citation['quote']!r} not in {citation['seed']}")
    assert missing == []


def test_quote_check_catches_a_drifted_quote():
    """The comparison is not vacuous: a one-character change to a real quote is not found."""
    if not SEEDS.is_dir():
        pytest.skip(f"the seed documents are not at {SEEDS}")
    text = _flat((SEEDS / "002_d3ae2d6843e41982.txt").read_text(encoding="utf-8"))
    quote = "65% dân số sử dụng các trang thiết bị kết nối Internet"
    assert quote in text
    assert quote.replace("65%", "66%") not in text


def _vi(number: float, decimals: int = 0) -> str:
    return f"{number:,.{decimals}f}".replace(",", "\0").replace(".", ",").replace("\0", ".")


def _spellings(value: float, unit: str) -> list[str]:
    """How a plan writes a target number: 95% / 95 % / 2,5%; a count as 6, 06, 1.000; money in tỷ đồng."""
    if unit == "ratio":
        pct = round(value * 100, 4)
        text = f"{pct:g}"
        return [f"{t}{sep}%" for t in (text, text.replace(".", ",")) for sep in ("", " ")]
    if unit == "vnd":
        billions = value / 1e9
        decimals = 0 if float(billions).is_integer() else 1
        return [f"{_vi(billions, decimals)} tỷ", f"{_vi(billions / 1000, 3).rstrip('0').rstrip(',')} nghìn tỷ"]
    number = f"{value:g}"
    out = [number, number.replace(".", ",")]
    if float(value).is_integer():
        out += [_vi(value), f"{int(value):02d}"]
    return out


def _found(spelled: list[str], where: str) -> bool:
    return any(re.search(rf"(?<![\d,.]){re.escape(s)}(?![\d])", where) for s in spelled)


def _said(target, unit: str, where: str, counted: int | None = None) -> bool:
    """``counted``: the size of the KPI's inventory; «22 sở, ngành» says 100% of them."""
    if target.text and _flat(target.text) in where:
        return True  # «tất cả», «đầy đủ», «hình thành»: the plan's words for the number, kept beside it
    if target.comparator == "range" and unit == "ratio":
        lo, hi = (f"{round(v * 100, 4):g}" for v in (target.low, target.high))
        return any(f"{lo}{dash}{hi}%" in where or f"{lo}%{dash}{hi}%" in where
                   for dash in ("-", "–", " - ", " – "))
    values = [v for v in (target.value, target.low, target.high) if v is not None]
    for value in values:
        if unit == "ratio" and value == 1 and (re.search(r"\b(\d+)/\1\b", where) or (
                counted is not None and _found([str(counted)], where))):
            continue  # «230/230 xã», «cho 22 sở, ngành»: every unit of the inventory
        if not _found(_spellings(value, unit), where):
            return False
    return True


def test_every_plan_number_is_in_its_quote(province):
    """A plan target's number (or the plan's word for it) is written in the sentence it cites, or in the
    heading the sentence sits under: no target is invented or rounded on the way into the catalogue."""
    from agent.config.schema import CoverageMeasure
    from agent.engine.kpi import KpiEngine
    from agent.engine.units import UnitIndex

    _, config = province
    engine = KpiEngine(config, UnitIndex(config), None)
    missing = []
    for kpi in config.kpis:
        if kpi.citation is None:
            continue
        where = _flat(kpi.citation.quote + " " + (kpi.citation.heading or ""))  # never the section: ours
        inventory = engine.inventory_of(kpi.measure) if isinstance(kpi.measure, CoverageMeasure) else None
        counted = len(inventory.members) if inventory is not None else None
        for target in kpi.targets:
            if target.origin != "plan" or target.comparator == "qualitative":
                continue
            if not _said(target, kpi.unit, where, counted):
                missing.append(f"{kpi.id}: {target.comparator} {target.value or (target.low, target.high)} "
                               f"not in «{kpi.citation.quote[:90]}»")
    assert not missing, "\n".join(missing)


def test_the_quote_check_catches_an_invented_number():
    from agent.config.schema import KpiTarget

    target = KpiTarget.model_validate({"phase": "x", "deadline": "2020-12-31", "comparator": ">=", "value": "85%"})
    assert _said(target, "ratio", "đạt 85% số xã") and not _said(target, "ratio", "đạt 80% số xã, 185%")


def test_the_readme_kpi_table_is_current():
    """The README's per-province KPI table is generated from the catalogues; a catalogue change that
    forgets it fails here (regenerate with scripts/gen_readme_kpis.py)."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_readme_kpis.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
