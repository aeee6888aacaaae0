"""The status page at / in headless Chromium: KPI table against targets, worst offenders, collectors; no scripts.

And the page as the ops wall shows it: at 1920×1080, the cards, the KPIs below target and the targets
down longest lie in the first screen, measured by the browser (tests/support/chromium_cdp.py) on the simulated
Bắc Giang (1,170 targets, some down); every unit name links to the unit's page at /units/<id>.
"""

from __future__ import annotations

import html
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest
from support.chromium_cdp import FLAGS, Browser, chromium
from support.net import http_get
from support.paths import AGENT, REPO
from support.province import thdl_systems

from exporters.report.words import AREAS
from exporters.status_page import WALL_BELOW_ROWS, WALL_DOWN_ROWS

PROVINCE = REPO / "config" / "provinces" / "bac-giang.yml"
LAB_NETWORK = "127.49.0.0/16"
WALL = (1920, 1080)
# A unit name with markup in it: the pages must show it as text, never as HTML.
MARKUP_NAME = "Trung tâm <i>THDL</i> & co"


def test_every_area_of_the_shipped_provinces_has_words() -> None:
    """The wall and the report name areas in words; an area id a province uses without them shows as an id."""
    import yaml

    used = set()
    for path in (REPO / "config" / "provinces").rglob("*.yml"):
        for kpi in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("kpis", []) or []:
            used.add(kpi.get("area", "other"))
    assert used and not used - set(AREAS) - {"other"}, sorted(used - set(AREAS))


@pytest.fixture
def agent(tmp_path: Path, tcp_peers, start_agent):
    ports = {f"up{i}": tcp_peers.listening(f"127.0.0.{i}") for i in (1, 2, 3)}
    down = ("127.0.0.4", tcp_peers.closed("127.0.0.4"))
    province = thdl_systems(ports, down, "no-such-process", site_name=MARKUP_NAME)
    return start_agent(province.write(tmp_path / "province.yml"))


def test_status_page_renders_in_chromium(agent, tmp_path: Path) -> None:
    status, content_type, page = http_get(agent.base + "/")
    assert status == 200 and content_type.startswith("text/html")
    assert b"<script" not in page.lower()  # no JavaScript: it works in any browser, even a text one

    profile = tmp_path / "chromium-profile"
    common = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1200"]
    dom = subprocess.run([*common, "--dump-dom", agent.base + "/"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    # The KPI table, in Vietnamese and English, each against its target, with the citation.
    assert "Hệ thống hoạt động" in text and "Systems up" in text
    assert "75.0%" in text and "&gt;= 70.0%" in text and "Đạt / met" in text
    assert "Chưa đạt / below" in text  # systems_count: 3 is not > 3
    assert "59/KH-UBND" in text and "trên 95 hệ thống" in text
    # Worst offenders: the refused system and the host missing its process, with their reasons.
    assert "sys-d" in text and "refused" in text and "process_down" in text
    # Collectors' health.
    assert "tcp" in text and "3/4" in text
    # The unit named with markup is text, linked to its page.
    assert ('<a href="/units/thdl" title="Trung tâm &lt;i&gt;THDL&lt;/i&gt; &amp; co">'
            "Trung tâm &lt;i&gt;THDL&lt;/i&gt; &amp; co</a>") in text
    assert "<i>THDL" not in text

    shot = tmp_path / "status.png"
    run = subprocess.run([*common, f"--screenshot={shot}", agent.base + "/"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1400, 1200)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    print(f"screenshot: {shot}")


def test_unit_page_shows_targets_since_when_and_kpis(agent) -> None:
    status, content_type, page = http_get(agent.base + "/units/thdl")
    assert status == 200 and content_type.startswith("text/html")
    text = page.decode()
    assert "<script" not in text.lower()
    assert "<h1>Trung tâm &lt;i&gt;THDL&lt;/i&gt; &amp; co" in text and "<i>THDL" not in text
    # Its lineage, each linked: the province and the district above it.
    assert '<a href="/units/p" title="Tỉnh Thử">Tỉnh Thử</a>' in text
    assert '<a href="/units/d1" title="Huyện Một">Huyện Một</a>' in text
    # Its targets: the refused one down with its reason, since a time given with its zone.
    row = re.search(r"<tr><td>sys-d<br>.*?</tr>", text, re.S)
    assert row is not None, text
    assert "Mất kết nối / down" in row.group(0) and "refused" in row.group(0)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\+07:00 \(Asia/Ho_Chi_Minh\)", row.group(0))
    up_row = re.search(r"<tr><td>sys-a<br>.*?</tr>", text, re.S)
    assert up_row is not None and "Hoạt động / up" in up_row.group(0)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\+07:00", up_row.group(0))  # up since when, too
    # The KPIs it counts in, by its own targets.
    assert "Hệ thống hoạt động" in text and "Số hệ thống" in text
    assert "4 mục tiêu của đơn vị / of its targets: sys-a, sys-b, sys-c, sys-d" in text

    # The district counts in the KPIs through nothing of its own here, but lists the unit below it.
    status, _, district = http_get(agent.base + "/units/d1")
    assert status == 200 and b'<a href="/units/thdl" title=' in district


@pytest.mark.parametrize("path, status", [
    ("/units/no-such-unit", 404),   # a valid id the configuration does not have
    ("/units/THDL", 404),           # ids are lower case
    ("/units/thdl%3Cb%3E", 404),    # not an id: never looked up, never echoed
    ("/units/", 404),
    ("/units/thdl/extra", 404),
    ("/units/" + "a" * 81, 404),    # longer than any id
])
def test_unit_page_refuses_unknown_and_invalid_ids(agent, path: str, status: int) -> None:
    code, _, body = http_get(agent.base + path)
    assert code == status
    assert b"<" not in body and b"%3C" not in body and b"extra" not in body
    if path == "/units/no-such-unit":
        assert body == b"not found: no unit 'no-such-unit' in the configuration\n"


def test_unit_page_methods(agent) -> None:
    import urllib.request

    head = urllib.request.Request(agent.base + "/units/thdl", method="HEAD")
    with urllib.request.urlopen(head, timeout=5) as response:
        assert response.status == 200 and response.read() == b""
    post = urllib.request.Request(agent.base + "/units/thdl", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=5)
    assert refused.value.code == 405 and refused.value.headers["Allow"] == "GET, HEAD"


@pytest.fixture
def province_lab(tmp_path: Path):
    """The simulated Bắc Giang with 15% of its devices down: a page as long as the real province's, and more
    targets down than the wall's list shows (its longest layout, with the "and N more" line)."""
    config = tmp_path / "agent.yml"
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen([*AGENT, "lab", "--config", str(PROVINCE), "--write-config", str(config),
                             "--down-ratio", "0.15", "--network", LAB_NETWORK], stdout=log, stderr=subprocess.STDOUT,
                            cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not config.exists():
            assert proc.poll() is None, (tmp_path / "lab.log").read_text()
            assert time.monotonic() < deadline, "the lab did not start in 120 s"
            time.sleep(0.2)
        yield config
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_wall_screen_first_screen_holds_cards_kpis_below_and_down_longest(province_lab: Path, start_agent,
                                                                          tmp_path: Path) -> None:
    agent = start_agent(province_lab, ready=False)
    agent.wait_ready(timeout=180)
    # The routers the lab keeps dead count as down once their probes time out: wait for the list to be longer
    # than the wall shows (bounded), so the blocks are measured at their longest.
    deadline, down = time.monotonic() + 180, 0
    while down <= WALL_DOWN_ROWS:
        assert time.monotonic() < deadline, f"only {down} targets down after 180 s"
        time.sleep(2)
        page = http_get(agent.base + "/", timeout=30)[2].decode()
        found = re.search(r"Down longest \((\d+)\)", page)
        down = int(found.group(1)) if found else 0
    browser = Browser(tmp_path / "chromium-profile", *WALL)
    try:
        browser.open(agent.base + "/")
        assert browser.evaluate("[innerWidth, innerHeight]") == list(WALL)
        blocks = browser.rects(["cards", "below", "down"])
        for name, rect in blocks.items():
            assert rect is not None, f"no block #{name} on the page"
            assert rect["height"] > 0 and rect["top"] >= 0, (name, rect)
            assert rect["bottom"] <= WALL[1], f"#{name} ends at {rect['bottom']:.0f} px, below the 1080 px fold"
        # ... and the page goes on below the fold: the full KPI table, the list of every target down.
        assert browser.evaluate("document.documentElement.scrollHeight") > 2 * WALL[1]
        below_fold = browser.rects(["kpis", "down-all"])
        assert all(r is not None and r["top"] > WALL[1] for r in below_fold.values()), below_fold

        # The blocks are full, at their longest: capped rows and the "and N more" line under each.
        rows = browser.evaluate("""({
            below: [...document.querySelectorAll('#below tbody tr')].map(r => [...r.cells].map(c => c.innerText)),
            down: [...document.querySelectorAll('#down tbody tr')].map(r => ({
                cells: [...r.cells].map(c => c.innerText),
                unit: r.cells[0].querySelector('a') && r.cells[0].querySelector('a').getAttribute('href')})),
            more: [...document.querySelectorAll('#below .more, #down .more')].length,
            clock: document.getElementById('clock').innerText,
            links: [...document.querySelectorAll('a[href^="/units/"]')].length,
            unlinked: [...document.querySelectorAll('#down tbody td:first-child, #down-all tbody td:first-child')]
                .filter(td => !td.querySelector('a')).length})""")
        assert len(rows["below"]) == WALL_BELOW_ROWS and len(rows["down"]) == WALL_DOWN_ROWS, rows
        assert rows["more"] == 2
        # Area names in words, Vietnamese and English, never the configuration's identifiers.
        words = {f"{vi}\n{en}" for vi, en in AREAS.values()}
        for cells in rows["below"]:
            assert cells[1] in words, cells
        # The time with its zone.
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\+07:00 \(Asia/Ho_Chi_Minh\)", rows["clock"].strip())
        # Every unit name is a link to its page; the first one down names that target down.
        assert rows["unlinked"] == 0 and rows["links"] > WALL_DOWN_ROWS
        first = rows["down"][0]
        status, _, unit_page = http_get(agent.base + first["unit"], timeout=30)
        assert status == 200
        assert html.escape(first["cells"][3]) in unit_page.decode() and "Mất kết nối / down" in unit_page.decode()

        shot = tmp_path / "wall-1920x1080.png"
        browser.screenshot(shot)
        width, height = struct.unpack(">II", shot.read_bytes()[16:24])
        assert (width, height) == WALL
        print(f"screenshot: {shot}; blocks: {blocks}")
    finally:
        browser.close()
