"""The lab's application systems: document management (QLVB), one-stop and public-service data.

A SQLite database holds plausible figures for every unit of the simulated province, one row per
unit and day over the last 15 months (documents issued, signed, exchanged between agencies, secret
ones among them; dossiers resolved, resolved online, at level 3/4 and through the one-stop system),
rising slowly as the plans expect, so that a 10th-to-9th quarter is cut at its real boundary days.
It also holds the public-service catalogue per unit (level, basic, eligible, integrated with the
national portal...), which units run the unified one-stop system, and daily form and transaction
figures. Two HTTP JSON APIs on loopback serve them per period, behind credentials:

- ``/api/v1/thong-ke/van-ban?tu_ngay=&den_ngay=`` (QLVB, bearer token): per unit ``van_ban_di``,
  ``van_ban_di_dien_tu``, ``van_ban_ky_so``, ``lien_thong`` (exchanged with other agencies),
  ``lien_thong_dien_tu`` (of them electronic, parallel-paper ones included), ``lien_thong_mat``,
  ``lien_thong_khong_mat`` and ``lien_thong_dien_tu_khong_mat`` under ``$.don_vi[*]``, and the
  national document-exchange axis link under ``$.truc_lien_thong_quoc_gia``;
- ``/api/v1/thong-ke/ho-so?from=&to=`` (one-stop, basic auth): per unit ``resolved``, ``online``,
  ``level34``, ``viaOneStop`` under ``$.data.items[*]``, the national portal link under
  ``$.data.nationalPortal``.

Dates are inclusive. The lab rewrites the province's ``sources:`` to point at these: an
``http_json`` source keeps its path and query but gets the lab's address for its host and fresh
credentials in files (``file:`` references); a ``sql`` source reads the lab database (tables
``van_ban_ngay``, ``ho_so_ngay``, ``dich_vu_cong``, ``don_vi_mot_cua``, ``bieu_mau_ngay``,
``giao_dich_ngay``, ``don_vi``); a ``file_drop`` source gets a folder of monthly CSV and Excel
reports written with its own column names, one of them with a malformed row and one with an
example row from the template, as units really send them.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import functools
import hmac
import json
import logging
import os
import random
import re
import secrets
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from openpyxl import Workbook

from agent.config.yamlsource import load_document
from agent.domain.periods import add_months
from agent.domain.rawdata import as_mapping
from collectors.lab_addresses import AddressPool

log = logging.getLogger(__name__)
MONTHS = 15
QLVB_PATH = "/api/v1/thong-ke/van-ban"
ONE_STOP_PATH = "/api/v1/thong-ke/ho-so"

# (start, end) of each rate over the 15 months, per level; documents and dossiers per unit-month.
RATES = {
    "edoc": {"province": (0.95, 0.98), "department": (0.92, 0.97), "district": (0.94, 0.98), "commune": (0.85, 0.93)},
    "signed": {"province": (0.93, 0.97), "department": (0.90, 0.96), "district": (0.86, 0.93),
               "commune": (0.74, 0.88)},
    "online": {"province": (0.30, 0.45), "department": (0.33, 0.52), "district": (0.24, 0.42),
               "commune": (0.12, 0.28)},
    "one_stop": {"province": (0.95, 0.99), "department": (0.93, 0.99), "district": (0.96, 0.995),
                 "commune": (0.90, 0.97)},
    "work_files": {"province": (0.84, 0.92), "department": (0.82, 0.91), "district": (0.62, 0.78),
                   "commune": (0.30, 0.52)},
    "form_autofill": {"department": (0.12, 0.26), "district": (0.10, 0.24), "commune": (0.08, 0.20)},
    "eauth": {"department": (0.85, 0.97), "district": (0.80, 0.95), "commune": (0.70, 0.92)},
}
VOLUME = {"documents": {"province": (400, 600), "department": (150, 400), "district": (300, 600),
                        "commune": (40, 120)},
          "dossiers": {"province": (50, 120), "department": (250, 500), "district": (800, 1200),
                       "commune": (80, 200)},
          "work_files": {"province": (80, 160), "department": (60, 150), "district": (100, 200),
                         "commune": (20, 60)}}
GENERIC = {"province": (0.6, 0.8), "department": (0.6, 0.85), "district": (0.5, 0.8), "commune": (0.4, 0.7)}


def month_list(today: dt.date, months: int = MONTHS) -> list[dt.date]:
    first = today.replace(day=1)
    return [add_months(first, -k) for k in range(months - 1, -1, -1)]


def day_list(today: dt.date, months: int = MONTHS) -> list[dt.date]:
    """Every day from the first of the earliest month to today."""
    first = month_list(today, months)[0]
    return [first + dt.timedelta(days=n) for n in range((today - first).days + 1)]


class Figures:
    """Deterministic plausible figures: the same seed gives the same province."""

    def __init__(self, units: list[tuple[str, str]], seed: int, today: dt.date | None = None) -> None:
        self.units = units
        self.random = random.Random(seed)
        self.today = today or dt.date.today()
        self.months = month_list(self.today)
        self._size: dict[tuple[str, str], int] = {}

    def _share(self, month_index: int) -> float:
        """How much of a month's volume is in: the current month is only partly over."""
        if month_index < len(self.months) - 1:
            return 1.0
        return max(self.today.day, 1) / 30.0

    def count(self, what: str, unit: str, level: str, month_index: int) -> int:
        key = (what, unit)
        if key not in self._size:
            low, high = VOLUME[what].get(level, VOLUME[what]["commune"])
            self._size[key] = self.random.randint(low, high)
        noise = self.random.uniform(0.85, 1.15)
        return max(1, round(self._size[key] * noise * self._share(month_index)))

    def rate(self, what: str, level: str, month_index: int) -> float:
        start, end = RATES.get(what, GENERIC).get(level, GENERIC.get(level, (0.5, 0.8)))
        progress = month_index / max(1, len(self.months) - 1)
        return min(1.0, max(0.0, start + (end - start) * progress + self.random.uniform(-0.02, 0.02)))

    def part(self, total: int, what: str, level: str, month_index: int) -> int:
        return min(total, round(total * self.rate(what, level, month_index)))

    def daily(self, what: str, unit: str, level: str, month_index: int) -> int:
        """A day's volume: a thirtieth of the unit's month, with noise (whole days only)."""
        key = (what, unit)
        if key not in self._size:
            low, high = VOLUME[what].get(level, VOLUME[what]["commune"])
            self._size[key] = self.random.randint(low, high)
        return max(0, round(self._size[key] / 30.0 * self.random.uniform(0.5, 1.5)))

    def month_index(self, day: dt.date) -> int:
        return (day.year - self.months[0].year) * 12 + day.month - self.months[0].month


def _units(raw_units: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    stack = list(raw_units or [])
    while stack:
        unit = stack.pop(0)
        if isinstance(unit, dict) and isinstance(unit.get("id"), str):
            out.append((unit["id"], str(unit.get("level", ""))))
            stack.extend(unit.get("children") or [])
    return out


def build_database(path: Path, units: list[tuple[str, str]], figures: Figures) -> None:
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE don_vi (ma TEXT PRIMARY KEY, cap TEXT NOT NULL);
            CREATE TABLE van_ban_ngay (ma_don_vi TEXT NOT NULL, ngay TEXT NOT NULL, van_ban_di INTEGER NOT NULL,
                van_ban_di_dien_tu INTEGER NOT NULL, van_ban_ky_so INTEGER NOT NULL, lien_thong INTEGER NOT NULL,
                lien_thong_dien_tu INTEGER NOT NULL, lien_thong_mat INTEGER NOT NULL,
                PRIMARY KEY (ma_don_vi, ngay));
            CREATE TABLE ho_so_ngay (ma_don_vi TEXT NOT NULL, ngay TEXT NOT NULL, da_giai_quyet INTEGER NOT NULL,
                giai_quyet_truc_tuyen INTEGER NOT NULL, giai_quyet_muc_do_3_4 INTEGER NOT NULL,
                qua_mot_cua INTEGER NOT NULL, PRIMARY KEY (ma_don_vi, ngay));
            CREATE TABLE bieu_mau_ngay (ma_don_vi TEXT NOT NULL, ngay TEXT NOT NULL, truong_tu_dong INTEGER NOT NULL,
                tong_truong INTEGER NOT NULL, PRIMARY KEY (ma_don_vi, ngay));
            CREATE TABLE giao_dich_ngay (ma_don_vi TEXT NOT NULL, ngay TEXT NOT NULL,
                giao_dich_xac_thuc INTEGER NOT NULL, giao_dich INTEGER NOT NULL, PRIMARY KEY (ma_don_vi, ngay));
            CREATE TABLE dich_vu_cong (ma_dich_vu TEXT PRIMARY KEY, ma_don_vi TEXT NOT NULL, muc_do INTEGER NOT NULL,
                co_ban BOOLEAN NOT NULL, du_dieu_kien_truc_tuyen BOOLEAN NOT NULL, truc_tuyen BOOLEAN NOT NULL,
                tich_hop_dvcqg BOOLEAN NOT NULL, pho_bien BOOLEAN NOT NULL, co_ho_tro BOOLEAN NOT NULL,
                ky_so_di_dong BOOLEAN NOT NULL, xu_ly_ho_so_dien_tu BOOLEAN NOT NULL, dung_csdl_dkdn BOOLEAN NOT NULL,
                giao_dich_truc_tuyen BOOLEAN NOT NULL);
            CREATE TABLE don_vi_mot_cua (ma_don_vi TEXT NOT NULL, he_thong_thong_nhat BOOLEAN NOT NULL);
        """)
        db.executemany("INSERT INTO don_vi VALUES (?, ?)", units)
        documents, dossiers, forms, transactions = [], [], [], []
        for day in day_list(figures.today):
            i = figures.month_index(day)
            stamp = day.isoformat()
            for unit, level in units:
                sent = figures.daily("documents", unit, level, i)
                electronic = figures.part(sent, "edoc", level, i)
                signed = min(electronic, figures.part(sent, "signed", level, i))
                exchanged = round(sent * 0.6)
                secret = min(exchanged, round(exchanged * figures.random.uniform(0.0, 0.06)))
                # Secret documents never travel on the network; the electronic ones are among the others.
                exchanged_electronic = min(exchanged - secret, figures.part(exchanged, "edoc", level, i))
                documents.append((unit, stamp, sent, electronic, signed, exchanged, exchanged_electronic, secret))
                resolved = figures.daily("dossiers", unit, level, i)
                online = figures.part(resolved, "online", level, i)
                level34 = round(online * figures.random.uniform(0.88, 0.97))
                one_stop = figures.part(resolved, "one_stop", level, i)
                dossiers.append((unit, stamp, resolved, online, level34, one_stop))
                if level in ("department", "district", "commune"):
                    fields = 10 * online
                    forms.append((unit, stamp, figures.part(fields, "form_autofill", level, i), fields))
                    transactions.append((unit, stamp, figures.part(online, "eauth", level, i), online))
        db.executemany("INSERT INTO van_ban_ngay VALUES (?, ?, ?, ?, ?, ?, ?, ?)", documents)
        db.executemany("INSERT INTO ho_so_ngay VALUES (?, ?, ?, ?, ?, ?)", dossiers)
        db.executemany("INSERT INTO bieu_mau_ngay VALUES (?, ?, ?, ?)", forms)
        db.executemany("INSERT INTO giao_dich_ngay VALUES (?, ?, ?, ?)", transactions)
        db.executemany("INSERT INTO dich_vu_cong VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       _catalogue(units, figures))
        # Every unit with procedures has a one-stop desk; most run the unified three-level system.
        db.executemany("INSERT INTO don_vi_mot_cua VALUES (?, ?)",
                       [(unit, figures.random.random() < 0.93) for unit, level in units
                        if level in ("department", "district", "commune")])


def _catalogue(units: list[tuple[str, str]], figures: Figures) -> list[tuple[Any, ...]]:
    """The public-service catalogue: a few services per department and district, one or two per commune."""
    rng, rows = figures.random, []
    for unit, level in units:
        count = {"department": 8, "district": 4, "commune": 2}.get(level, 0)
        for n in range(count):
            eligible = rng.random() < 0.85
            degree = rng.choice((2, 3, 3, 4, 4)) if eligible else 2
            online = degree >= 3
            rows.append((f"{unit}-{n:02d}", unit, degree, rng.random() < 0.6, eligible, online,
                         online and rng.random() < 0.55, rng.random() < 0.4, rng.random() < 0.97,
                         online and rng.random() < 0.25, online and rng.random() < 0.6, online and rng.random() < 0.5,
                         online and rng.random() < 0.8))
    return rows


def _between(db: sqlite3.Connection, sql: str, start: str, end: str) -> list[sqlite3.Row]:
    return db.execute(sql, (start, end)).fetchall()


def qlvb_body(db: sqlite3.Connection, start: str, end: str) -> dict[str, Any]:
    rows = _between(db, "SELECT ma_don_vi, SUM(van_ban_di), SUM(van_ban_di_dien_tu), SUM(van_ban_ky_so), "
                        "SUM(lien_thong), SUM(lien_thong_dien_tu), SUM(lien_thong_mat) FROM van_ban_ngay "
                        "WHERE ngay >= ? AND ngay <= ? GROUP BY ma_don_vi ORDER BY ma_don_vi", start, end)
    return {"tu_ngay": start, "den_ngay": end,
            "truc_lien_thong_quoc_gia": {"da_ket_noi": 1, "van_ban_gui_nhan": sum(r[5] for r in rows)},
            "don_vi": [{"ma_don_vi": r[0], "van_ban_di": r[1], "van_ban_di_dien_tu": r[2], "van_ban_ky_so": r[3],
                        "lien_thong": r[4], "lien_thong_dien_tu": r[5], "lien_thong_mat": r[6],
                        "lien_thong_khong_mat": r[4] - r[6], "lien_thong_dien_tu_khong_mat": r[5]} for r in rows]}


def one_stop_body(db: sqlite3.Connection, start: str, end: str) -> dict[str, Any]:
    rows = _between(db, "SELECT ma_don_vi, SUM(da_giai_quyet), SUM(giai_quyet_truc_tuyen), "
                        "SUM(giai_quyet_muc_do_3_4), SUM(qua_mot_cua) FROM ho_so_ngay "
                        "WHERE ngay >= ? AND ngay <= ? GROUP BY ma_don_vi ORDER BY ma_don_vi", start, end)
    return {"status": "ok", "data": {"from": start, "to": end, "nationalPortal": {"connected": 1},
                                     "items": [{"unitCode": r[0], "resolved": r[1], "online": r[2], "level34": r[3],
                                                "viaOneStop": r[4]} for r in rows]}}


# path -> (query parameter of the first day, of the last day, body builder)
APIS = {QLVB_PATH: ("tu_ngay", "den_ngay", qlvb_body), ONE_STOP_PATH: ("from", "to", one_stop_body)}
_FIELD = re.compile(r"\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")  # $.a.b: the paths a generated body can honour
_ITEMS = re.compile(r"\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\[\*\]")


def _put(body: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.strip(".").split(".")
    for key in parents:
        body = body.setdefault(key, {})
    body[last] = value


def _get(body: dict[str, Any], path: str) -> object:
    for key in path.strip(".").split("."):
        if not isinstance(body, dict) or key not in body:
            return None
        body = body[key]
    return body


def generated_body(series: dict[str, Any], units: list[tuple[str, str]], codes: dict[str, str],
                   seed: str, shares: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A body for an ``http_json`` source the lab has no real API for, shaped by the source's own field
    mapping: each series gets a plausible numerator (or value) not above its denominator, per unit under
    its ``items`` if it has some. So every source of a shipped province answers in the demo. A value
    series in ``shares`` feeds a ratio KPI (a share saved, 30%-50%): it answers a share, not a count."""
    rng = random.Random(seed)
    body: dict[str, Any] = {}
    lists: dict[str, dict[str, dict[str, Any]]] = {}  # items path -> unit -> that unit's item
    for name, mapping in series.items():
        if not isinstance(mapping, dict):
            continue
        items = _ITEMS.fullmatch(str(mapping.get("items", "")))
        unit_field = _FIELD.fullmatch(str(mapping.get("unit", "")))
        targets: list[dict[str, Any]] = [body]
        if items and unit_field:
            by_unit = lists.setdefault(items.group(1), {})
            for unit, _level in units:
                by_unit.setdefault(unit, {})
                _put(by_unit[unit], unit_field.group(1), codes.get(unit, unit))
            targets = list(by_unit.values())
        fields = {key: _FIELD.fullmatch(str(mapping.get(key, ""))) for key in ("denominator", "numerator", "value")}
        for target in targets:
            # Series may share a denominator (reports sent nationally, provincially: of the same reports).
            shared = _get(target, fields["denominator"].group(1)) if fields["denominator"] else None
            denominator = shared if isinstance(shared, int) else rng.randint(40, 600)
            numerator = round(denominator * rng.uniform(0.7, 1.0))
            value = round(rng.uniform(0.2, 0.6), 3) if name in shares else numerator
            for key, figure in (("denominator", denominator), ("numerator", numerator), ("value", value)):
                field = fields[key]
                if field:
                    _put(target, field.group(1), figure)
    for path, by_unit in lists.items():
        _put(body, path, list(by_unit.values()))
    return body


class _ApiHandler(BaseHTTPRequestHandler):
    apps: AppServer

    def log_message(self, format: str, *args: object) -> None:
        log.debug("lab apps: " + format, *args)

    def _reply(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        api = APIS.get(parts.path)
        expected = self.apps.credentials.get(parts.path)
        generated = self.apps.generated.get(parts.path)
        if (api is None and generated is None) or expected is None:
            self._reply(404, {"error": "not found"})
            return
        header, value = expected
        if not hmac.compare_digest(self.headers.get(header, "").encode(), value.encode()):
            self._reply(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer realm="lab"'})
            return
        if api is None:
            self._reply(200, generated() if generated is not None else {})
            return
        query = parse_qs(parts.query)
        try:
            start, end = (dt.date.fromisoformat(query[name][0]).isoformat() for name in api[:2])
        except (KeyError, ValueError):
            self._reply(400, {"error": f"give {api[0]} and {api[1]} as YYYY-MM-DD"})
            return
        with sqlite3.connect(f"file:{self.apps.database}?mode=ro", uri=True) as db:
            self._reply(200, api[2](db, start, end))


class AppServer:
    """One simulated host (``qlvb.bacgiang.gov.vn``) on its own loopback address."""

    def __init__(self, address: str, database: Path) -> None:
        self.database = database
        self.credentials: dict[str, tuple[str, str]] = {}  # path -> (header, the value it must have)
        self.generated: dict[str, Callable[[], dict[str, Any]]] = {}  # path -> body, for a source with no real API
        handler = type("Handler", (_ApiHandler,), {"apps": self})
        self.server = ThreadingHTTPServer((address, 0), handler)
        self.server.daemon_threads = True
        self.address = f"{address}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name=f"lab-app-{address}", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AppsLab:
    """A lab service: stands in for the systems behind a province's ``sources:``."""

    def __init__(self, pool: AddressPool, seed: int = 59, today: dt.date | None = None) -> None:
        self.pool = pool
        self.seed = seed
        self.today = today
        self.workdir: Path | None = None
        self.servers: dict[str, AppServer] = {}
        self.rewritten: list[str] = []

    async def start(self, data: dict[str, Any], base_dir: Path) -> None:
        sources = [s for s in data.get("sources") or [] if isinstance(s, dict)]
        if not sources:
            return
        self.workdir = Path(tempfile.mkdtemp(prefix="egov-lab-apps-"))
        units = _units(data.get("units"))
        self.units = units
        self.figures = Figures(units, self.seed, self.today)
        self.database = self.workdir / "ung-dung.db"
        build_database(self.database, units, self.figures)
        # Value series read by a ratio KPI (the default unit), per source: their lab answer is a share.
        shares: dict[str, set[str]] = {}
        for kpi in data.get("kpis") or []:
            measure = kpi.get("measure") if isinstance(kpi, dict) else None
            if isinstance(measure, dict) and measure.get("kind") == "value" and kpi.get("unit", "ratio") == "ratio":
                shares.setdefault(str(measure.get("source")), set()).add(str(measure.get("series")))
        for source in sources:
            kind = source.get("kind")
            if kind == "http_json":
                self._http(source, frozenset(shares.get(str(source.get("id")), ())))
            elif kind == "sql":
                source["url"] = f"sqlite:///{self.database}"
                source.pop("password", None)
                source["read_only"] = "session"
            elif kind == "file_drop":
                source["folder"] = str(self._reports(source, units))
            else:
                continue
            self.rewritten.append(str(source.get("id")))
        log.info("lab apps: database %s; sources rewritten: %s", self.database, ", ".join(self.rewritten))

    def _secret_file(self, name: str, value: str) -> str:
        assert self.workdir is not None
        folder = self.workdir / "secrets"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / name
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o600)
        return f"file:{path}"

    def _http(self, source: dict[str, Any], shares: frozenset[str] = frozenset()) -> None:
        parts = urlsplit(str(source.get("url", "")))
        host = parts.hostname or "app"
        if host not in self.servers:
            self.servers[host] = AppServer(self.pool.take(f"app:{host}"), self.database)
        server = self.servers[host]
        auth = as_mapping(source.get("auth"))
        sid = str(source.get("id"))
        if "basic" in auth and isinstance(auth["basic"], dict):
            user = str(auth["basic"].get("username", "lab"))
            password = secrets.token_urlsafe(16)
            auth["basic"]["password"] = self._secret_file(f"{sid}-password", password)
            expected = ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        elif "header" in auth and isinstance(auth["header"], dict):
            value = secrets.token_urlsafe(24)
            auth["header"]["value"] = self._secret_file(f"{sid}-key", value)
            expected = (str(auth["header"].get("name", "X-API-Key")), value)
        else:
            token = secrets.token_urlsafe(24)
            source["auth"] = {"bearer": self._secret_file(f"{sid}-token", token)}
            expected = ("Authorization", f"Bearer {token}")
        server.credentials[parts.path] = expected
        if parts.path not in APIS:
            declared = source.get("series")
            series: dict[str, Any] = declared if isinstance(declared, dict) else {}
            codes = {unit: code for code, unit in (source.get("unit_map") or {}).items()}
            server.generated[parts.path] = functools.partial(generated_body, series, self.units, codes,
                                                             f"{self.seed}:{sid}", shares)
        source["url"] = urlunsplit(("http", server.address, parts.path, parts.query, ""))
        source.pop("ca_file", None)
        source.pop("tls_verify", None)

    def _reports(self, source: dict[str, Any], units: list[tuple[str, str]]) -> Path:
        """Monthly reports with the source's own columns: departments in CSV, districts and communes in Excel."""
        assert self.workdir is not None
        folder = self.workdir / "bao-cao" / str(source.get("id"))
        folder.mkdir(parents=True)
        columns = source.get("columns") or {}
        unit_col, date_col = str(columns.get("unit", "unit")), str(columns.get("date", "date"))
        series = {k: v for k, v in (source.get("series") or {}).items() if isinstance(v, dict)}
        note_col = str(columns.get("note", "note"))
        header = [unit_col, date_col]
        for mapping in series.values():
            header += [str(mapping[k]) for k in ("numerator", "denominator", "value") if k in mapping]
        header.append(note_col)
        codes = {unit: code for code, unit in (source.get("unit_map") or {}).items()}
        monthly = source.get("granularity") == "monthly"
        for i, month in enumerate(self.figures.months):
            rows: dict[bool, list[list[Any]]] = {True: [], False: []}
            # A monthly report is dated by its month; a daily one by its last day (the figures are the month's).
            last = min(add_months(month, 1) - dt.timedelta(days=1), self.figures.today)
            stamp = month.strftime("%Y-%m") if monthly else last.isoformat()
            for unit, level in units:
                row: list[Any] = [codes.get(unit, unit), stamp]
                for name, mapping in series.items():
                    total = self.figures.count(name if name in VOLUME else "work_files", unit, level, i)
                    if "value" in mapping:
                        row.append(total)
                    else:
                        row += [self.figures.part(total, name, level, i), total]
                row.append("")
                rows[level in ("province", "department")].append(row)
            if i == 0 and rows[True]:
                rows[True][0][2] = "chưa tổng hợp"  # a malformed row, as people send them: reported and skipped
            if i == len(self.figures.months) - 1 and rows[True]:
                # The province's template, copied in with its sample row: marked, so never counted as a figure.
                sample = [rows[True][0][0], stamp, *[1] * (len(header) - 3), "example"]
                with (folder / "mau-bao-cao.csv").open("w", encoding="utf-8", newline="") as out:
                    csv.writer(out).writerows([header, sample])
            with (folder / f"{month:%Y-%m}_so-nganh.csv").open("w", encoding="utf-8", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(header)
                writer.writerows(rows[True])
            workbook = Workbook()
            sheet = workbook.worksheets[0]  # a new workbook's one sheet, the active one
            sheet.title = "Báo cáo"
            sheet.append(header)
            for row in rows[False]:
                sheet.append(row)
            workbook.save(folder / f"{month:%Y-%m}_huyen-xa.xlsx")
        return folder

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def ensure_source_secrets(province_config: Path | None) -> None:
    """Give every ``env:`` secret the province's sources name a lab value if it is unset, so the
    province configuration validates in the lab; the agent configuration the lab writes uses files."""
    if province_config is None:
        return
    try:
        data = load_document(province_config).data
    except Exception:  # an invalid configuration is reported by the lab's own validation
        return
    stack: list[Any] = list(data.get("sources") or []) if isinstance(data, dict) else []
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node.startswith("env:") and len(node) > 4:
            os.environ.setdefault(node[4:], "lab-" + secrets.token_urlsafe(12))
