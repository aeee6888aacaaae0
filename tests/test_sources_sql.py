"""sql sources: SQLite (the embedded default) and a real PostgreSQL server started by the test.

PostgreSQL comes from Debian's ``postgresql`` package (CI installs it); the server is initialised
in a temporary directory (as the ``postgres`` user when the tests run as root, since initdb refuses
root), listens on a loopback port and a socket in that directory, and is stopped and removed at
the end.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, sample
from sources_util import exposition, fetch, kpi, province

from agent.config import ConfigError, load_config
from agent.periods import ReportingSpec, current_periods

BG = ReportingSpec(quarter_start_month=12, quarter_start_day=10)
ROWS_PER_UNIT = {"s1": (40, 50), "d1": (200, 400), "c1": (10, 100), "c2": (30, 60), "c3": (5, 50)}


def months_back(n: int) -> list[dt.date]:
    first = dt.date.today().replace(day=1)
    out = []
    for _ in range(n):
        out.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return out


MONTHS = months_back(15)


def rows() -> list[tuple[str, str, int, int]]:
    """Monthly rows: month k back has k+1 times the base figures, so every period sums differently."""
    return [(unit, month.isoformat(), online * (k + 1), total * (k + 1))
            for k, month in enumerate(MONTHS) for unit, (online, total) in ROWS_PER_UNIT.items()]


def expected(period_kind: str, units: set[str] | None = None) -> tuple[int, int]:
    period = current_periods(BG, "Asia/Ho_Chi_Minh")[period_kind]
    chosen = [r for r in rows() if period.contains(dt.date.fromisoformat(r[1])) and (units is None or r[0] in units)]
    return sum(r[2] for r in chosen), sum(r[3] for r in chosen)


QUERY = ("SELECT ma_don_vi, SUM(truc_tuyen) AS truc_tuyen, SUM(tong) AS tong FROM ho_so_thang "
         "WHERE thang >= :period_start AND thang < :period_end GROUP BY ma_don_vi")
SOURCE = """\
  - id: dvc
    kind: sql
    granularity: daily
    url: "{url}"
    {password}
    interval: 10m
    timeout: {timeout}
    series:
      online: {{query: "{query}", unit: ma_don_vi, numerator: truc_tuyen, denominator: tong}}
"""
KPIS = (kpi("online_all", "{kind: ratio, source: dvc, series: online}")
        + kpi("online_district", "{kind: ratio, source: dvc, series: online, levels: [district], period: quarter}"))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "dvc.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE ho_so_thang (ma_don_vi TEXT, thang TEXT, truc_tuyen INTEGER, tong INTEGER)")
        db.executemany("INSERT INTO ho_so_thang VALUES (?, ?, ?, ?)", rows())
    return path


def sqlite_config(tmp_path: Path, query: str = QUERY, timeout: str = "10s") -> Path:
    # A relative path: resolved against the configuration file's folder.
    return province(tmp_path, SOURCE.format(url="sqlite:///dvc.db", password="", query=query, timeout=timeout), KPIS)


def test_sqlite_figures_per_period_and_level_through_the_agent(tmp_path: Path, sqlite_db: Path) -> None:
    samples = exposition(sqlite_config(tmp_path))
    numerator, denominator = expected("year")
    assert sample(samples, "egov_kpi_numerator", kpi="online_all") == numerator
    assert sample(samples, "egov_kpi_denominator", kpi="online_all") == denominator
    assert sample(samples, "egov_kpi_value", kpi="online_all") == pytest.approx(numerator / denominator)
    n, d = expected("quarter", {"d1", "d2"})
    assert (sample(samples, "egov_kpi_numerator", kpi="online_district"),
            sample(samples, "egov_kpi_denominator", kpi="online_district")) == (n, d)
    month = current_periods(BG, "Asia/Ho_Chi_Minh")["month"]
    assert sample(samples, "egov_kpi_period_numerator", kpi="online_all", period="month",
                  period_start=month.start.isoformat()) == expected("month")[0]


def test_sqlite_is_opened_read_only(tmp_path: Path, sqlite_db: Path) -> None:
    loaded = load_config(sqlite_config(tmp_path))
    runner = fetch(loaded)
    source = runner.states["dvc"].source
    with source.engine().connect() as connection, pytest.raises(Exception, match="readonly"):
        connection.exec_driver_sql("INSERT INTO ho_so_thang VALUES ('x', '2026-01-01', 1, 1)")
    with sqlite3.connect(sqlite_db) as db:
        assert db.execute("SELECT count(*) FROM ho_so_thang WHERE ma_don_vi = 'x'").fetchone() == (0,)


@pytest.mark.parametrize(("query", "reason", "message"), [
    ("SELECT ma_don_vi, truc_tuyen FROM ho_so_thang WHERE thang >= :period_start", "missing_field",
     "series online: the query returns no column 'tong'"),
    ("SELECT ma_don_vi, truc_tuyen, tong FROM no_such_table", "query", "no such table: no_such_table"),
    ("SELECT ma_don_vi, 'many' AS truc_tuyen, tong FROM ho_so_thang", "wrong_type",
     "truc_tuyen: expected a number, got 'many'"),
])
def test_sql_errors_are_labelled(tmp_path: Path, sqlite_db: Path, caplog, query, reason, message) -> None:
    runner = fetch(load_config(sqlite_config(tmp_path, query=query)))
    assert dict(runner.states["dvc"].errors) == {reason: 1}
    assert message in caplog.text


def test_a_slow_query_is_stopped_at_the_timeout(tmp_path: Path, sqlite_db: Path) -> None:
    slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
            "SELECT 'c1' AS ma_don_vi, 1 AS truc_tuyen, count(*) AS tong FROM n")
    started = dt.datetime.now()
    runner = fetch(load_config(sqlite_config(tmp_path, query=slow, timeout="1s")))
    assert dict(runner.states["dvc"].errors) == {"timeout": 1}
    assert (dt.datetime.now() - started).total_seconds() < 5
    assert runner.states["dvc"].source.context.threads_running == 0  # the query was interrupted, not abandoned


@pytest.mark.parametrize(("url", "extra", "message"), [
    ("postgresql+psycopg://u:hunter2@db/x", "", "the password does not belong in the URL"),
    ("sqlite:///:memory:", "", "a SQLite source needs a database file"),
    ("oracle+oracledb://u@db/x", "", "cannot make a oracle session read-only"),
    ("nosuch://u@db/x", "", "unknown SQL dialect 'nosuch'"),
])
def test_sql_settings_are_validated(tmp_path: Path, url: str, extra: str, message: str) -> None:
    path = province(tmp_path, SOURCE.format(url=url, password=extra, query=QUERY, timeout="5s"), KPIS)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert message in text and "province.yml:" in text and "sources[0]" in text
    assert "hunter2" not in text


def test_queries_are_checked_before_they_run(tmp_path: Path) -> None:
    bad = [("DELETE FROM ho_so_thang", "a query must be a single SELECT"),
           ("SELECT 1 AS ma_don_vi, 1 AS truc_tuyen, 1 AS tong WHERE :since > 0", "unknown bind parameter :since")]
    for query, message in bad:
        path = province(tmp_path, SOURCE.format(url="sqlite:///dvc.db", password="", query=query, timeout="5s"), KPIS)
        with pytest.raises(ConfigError, match=message):
            load_config(path)


# --- PostgreSQL --------------------------------------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class Postgres:
    def __init__(self) -> None:
        self.bin = _pg_bin()
        if self.bin is None:
            pytest.skip("PostgreSQL server binaries not found: install Debian's postgresql package")
        self.dir = Path(tempfile.mkdtemp(prefix="egov-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.user = "postgres"
            shutil.chown(self.dir, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "30", "-o",
                  f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=self.dir)
        assert result.returncode == 0, f"{tool} failed:\n{result.stdout}\n{result.stderr}"

    def admin(self):
        import psycopg
        return psycopg.connect(host=str(self.dir), port=self.port, user="postgres", dbname="postgres",
                               autocommit=True)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        with server.admin() as db:
            # The account may write: the agent's own read-only session must be what stops it.
            db.execute("CREATE ROLE egov_ro LOGIN PASSWORD 'pg-pass-for-the-test'")
            db.execute("CREATE TABLE ho_so_thang (ma_don_vi text, thang date, truc_tuyen integer, tong integer)")
            db.execute("GRANT ALL ON ho_so_thang TO egov_ro")
            with db.cursor() as cur:
                cur.executemany("INSERT INTO ho_so_thang VALUES (%s, %s, %s, %s)", rows())
        yield server
    finally:
        server.stop()


def pg_config(tmp_path: Path, postgres: Postgres, monkeypatch, query: str = QUERY, env: str = "EGOV_TEST_PG") -> Path:
    monkeypatch.setenv("EGOV_TEST_PG", "pg-pass-for-the-test")
    monkeypatch.setenv("EGOV_TEST_PG_WRONG", "wrong-password-xyz")
    url = f"postgresql+psycopg://egov_ro@127.0.0.1:{postgres.port}/postgres"
    return province(tmp_path, SOURCE.format(url=url, password=f'password: "env:{env}"', query=query, timeout="10s"),
                    KPIS)


def test_postgresql_figures_through_the_agent(tmp_path: Path, postgres: Postgres, monkeypatch) -> None:
    samples = exposition(pg_config(tmp_path, postgres, monkeypatch))
    assert (sample(samples, "egov_kpi_numerator", kpi="online_all"),
            sample(samples, "egov_kpi_denominator", kpi="online_all")) == expected("year")
    assert (sample(samples, "egov_kpi_numerator", kpi="online_district"),
            sample(samples, "egov_kpi_denominator", kpi="online_district")) == expected("quarter", {"d1", "d2"})
    assert sample(samples, "egov_source_up", source="dvc", kind="sql") == 1


def test_postgresql_session_is_read_only(tmp_path: Path, postgres: Postgres, monkeypatch, caplog) -> None:
    writing = ("WITH w AS (INSERT INTO ho_so_thang VALUES ('x', '2026-01-01', 1, 1) RETURNING 1) "
               "SELECT 'c1' AS ma_don_vi, count(*) AS truc_tuyen, count(*) AS tong FROM w")
    runner = fetch(load_config(pg_config(tmp_path, postgres, monkeypatch, query=writing)))
    assert dict(runner.states["dvc"].errors) == {"query": 1}
    assert "read-only transaction" in caplog.text
    with postgres.admin() as db:
        assert db.execute("SELECT count(*) FROM ho_so_thang WHERE ma_don_vi = 'x'").fetchone() == (0,)


def test_postgresql_wrong_password_never_shows_it(tmp_path: Path, postgres: Postgres, monkeypatch, caplog) -> None:
    runner = fetch(load_config(pg_config(tmp_path, postgres, monkeypatch, env="EGOV_TEST_PG_WRONG")))
    assert dict(runner.states["dvc"].errors) == {"db_connect": 1}
    assert "password authentication failed" in caplog.text
    assert "wrong-password-xyz" not in caplog.text
    assert f"postgresql+psycopg://egov_ro@127.0.0.1:{postgres.port}/postgres" in caplog.text
