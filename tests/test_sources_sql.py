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
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.exposition import sample
from support.net import free_port
from support.paths import REPO
from support.sources import exposition, fetch, fetch_elsewhere, kpi, province

from agent.config.loading import load_config
from agent.config.yamlsource import ConfigError
from agent.domain.periods import ReportingSpec, current_periods
from agent.engine.units import UnitIndex
from agent.sources.runner import SourceRunner

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


def test_the_fetch_runs_in_a_child_so_sqlalchemy_never_enters_the_agent(tmp_path: Path, sqlite_db: Path) -> None:
    up, total, held = fetch_elsewhere(sqlite_config(tmp_path), "dvc", "online", {"sqlalchemy"})
    assert (up, total, held) == (True, float(expected("year")[0]), [])


def test_a_fetch_process_that_dies_is_counted_and_the_next_fetch_starts_another(tmp_path: Path,
                                                                                sqlite_db: Path) -> None:
    """The child is killed while SQLite makes it wait for a writer's lock: the fetch fails as
    ``fetch_process``, the values are kept, and the next fetch (a new child) works."""
    import asyncio

    import psutil

    loaded = load_config(sqlite_config(tmp_path, timeout="30s"))
    runner = fetch(loaded)
    _, before = runner.snapshot("dvc")

    async def killed_fetch() -> bool:
        task = asyncio.create_task(runner.fetch("dvc"))
        for _ in range(600):
            children = [c for c in psutil.Process().children(recursive=True)
                        if "agent.sources.child" in " ".join(c.cmdline())]
            if children:
                await asyncio.sleep(1.0)  # inside its query, waiting on the lock
                children[0].kill()
                break
            await asyncio.sleep(0.05)
        return await task

    writer = sqlite3.connect(sqlite_db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        assert asyncio.run(killed_fetch()) is False
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    state = runner.states["dvc"]
    assert dict(state.errors) == {"fetch_process": 1} and state.last_error == "fetch_process"
    _, kept = runner.snapshot("dvc")
    assert kept.data == before.data
    assert asyncio.run(runner.fetch("dvc")) is True
    assert runner.states["dvc"].up

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


COLUMNS = "'c1' AS ma_don_vi, 1 AS truc_tuyen, 1 AS tong"


REFUSED_QUERIES = [
    ("DELETE FROM ho_so_thang", "a query must be a single SELECT (or WITH ... SELECT); this is a DELETE"),
    (f"SELECT {COLUMNS}; DROP TABLE ho_so_thang", "a query must be a single SELECT; this is 2 statements"),
    (f"SELECT {COLUMNS}; SELECT {COLUMNS}", "a query must be a single SELECT; this is 2 statements"),
    (f"WITH w AS (DELETE FROM ho_so_thang RETURNING 1) SELECT {COLUMNS} FROM w",
     "a query must only read; this one has a DELETE in it"),
    (f"WITH w AS (INSERT INTO ho_so_thang VALUES ('x', '2026-01-01', 1, 1) RETURNING 1) SELECT {COLUMNS} FROM w",
     "a query must only read; this one has an INSERT in it"),
    (f"SELECT {COLUMNS} FROM ho_so_thang WHERE ma_don_vi IN "
     "(WITH u AS (UPDATE ho_so_thang SET tong = 0 RETURNING ma_don_vi) SELECT ma_don_vi FROM u)",
     "a query must only read; this one has an UPDATE in it"),
    (f"SELECT {COLUMNS} INTO sao_chep FROM ho_so_thang", "this one has SELECT ... INTO (it creates a table)"),
    (f"SELECT {COLUMNS} FROM ho_so_thang FOR UPDATE", "this one has a locking clause (FOR UPDATE/SHARE)"),
    ("SET TRANSACTION READ WRITE", "a query must be a single SELECT (or WITH ... SELECT); this is a SET"),
    ("VACUUM", "a query must be a single SELECT (or WITH ... SELECT); this is a VACUUM command"),
    ("SELECT ma_don_vi, FROM", "the query does not parse as postgres"),
    ("-- nothing but a comment", "the query is empty"),
    (f"SELECT {COLUMNS} WHERE :since > 0", "unknown bind parameter :since"),
]


@pytest.mark.parametrize(("query", "message"), REFUSED_QUERIES)
def test_only_a_single_read_only_select_passes_check_config(tmp_path: Path, query: str, message: str) -> None:
    url = "postgresql+psycopg://egov_ro@127.0.0.1:5432/dvc"
    path = province(tmp_path, SOURCE.format(url=url, password="", query=query.replace('"', '\\"'), timeout="5s"),
                    KPIS)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and "sources[0]" in str(caught.value) and "online" in str(caught.value)


def test_check_config_refuses_the_statements_of_the_issue(tmp_path: Path) -> None:
    """The command people run: ``SELECT 1; DROP ...`` and ``WITH ... DELETE ...`` used to pass it."""
    url = "postgresql+psycopg://egov_ro@127.0.0.1:5432/dvc"
    for query, message in [(f"SELECT {COLUMNS}; DROP TABLE ho_so_thang", "this is 2 statements"),
                           (f"WITH w AS (DELETE FROM ho_so_thang RETURNING 1) SELECT {COLUMNS} FROM w",
                            "this one has a DELETE in it")]:
        path = province(tmp_path, SOURCE.format(url=url, password="", query=query, timeout="5s"), KPIS)
        result = subprocess.run([sys.executable, "-m", "agent.app.cli", "check-config", str(path)], capture_output=True,
                                text=True, timeout=60, cwd=REPO)
        assert result.returncode != 0 and message in result.stdout + result.stderr


@pytest.mark.parametrize("query", [
    f"WITH t AS (SELECT {COLUMNS}) SELECT * FROM t",
    f"SELECT {COLUMNS} UNION ALL SELECT 'c2', 2, 2",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
    "SELECT 'c1' AS ma_don_vi, count(*)::int AS truc_tuyen, 3 AS tong FROM n",
    "/* Sở Nội vụ's figures */ " + QUERY,
])
def test_read_only_selects_pass_check_config(tmp_path: Path, query: str) -> None:
    url = "postgresql+psycopg://egov_ro@127.0.0.1:5432/dvc"
    load_config(province(tmp_path, SOURCE.format(url=url, password="", query=query, timeout="5s"), KPIS))


def test_run_parses_the_queries_in_a_child_with_the_same_verdicts(tmp_path: Path) -> None:
    """``egov-agent run`` (parse_queries_in_child) checks the queries in a child process, so sqlglot never enters
    the agent; every query gets the verdict and message it gets in check-config's own process."""
    url = "postgresql+psycopg://egov_ro@127.0.0.1:5432/dvc"
    queries = [q for q, _ in REFUSED_QUERIES] + [f"WITH t AS (SELECT {COLUMNS}) SELECT * FROM t", QUERY]
    paths = []
    for i, query in enumerate(queries):
        folder = tmp_path / str(i)
        folder.mkdir()
        paths.append(str(province(folder, SOURCE.format(url=url, password="", query=query, timeout="5s"), KPIS)))
    code = ("import json, sys; from agent.config.loading import load_config; from agent.config.yamlsource import "
            "ConfigError; from agent.sources.sqlspec import parse_queries_in_child\n"
            "def verdict(path):\n"
            "    try:\n        load_config(path, resolve_secrets=False)\n        return 'ok'\n"
            "    except ConfigError as exc:\n        return str(exc)\n"
            "parse_queries_in_child(sys.argv[1] == 'child')\n"
            "print(json.dumps([[verdict(p) for p in sys.argv[2:]], 'sqlglot' in sys.modules]))")

    def verdicts(where: str) -> tuple[list[str], bool]:
        done = subprocess.run([sys.executable, "-c", code, where, *paths], cwd=REPO, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr
        import json

        return json.loads(done.stdout)

    (here, sqlglot_here), (there, sqlglot_loaded) = verdicts("here"), verdicts("child")
    assert sqlglot_here
    assert there == here and not sqlglot_loaded
    assert here[-2:] == ["ok", "ok"]
    for (_, message), verdict in zip(REFUSED_QUERIES, here, strict=False):
        assert message in verdict


def test_run_checks_every_sql_source_in_one_child_started_before_the_validation(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """At a start or reload, one child parses the queries of every sql source while the rest of the file is
    validated (agent.sources.sqlspec.prefetched_checks), not one child per source one after the other; the
    verdicts are the same, and a child whose answer nobody took (a source refused before its queries are
    checked) does not outlive the load."""
    import psutil

    from agent.sources import child, sqlspec

    calls: list[str] = []
    real_start, real_call = child.start, child.call
    monkeypatch.setattr(child, "start", lambda module, function, *rest: calls.append(f"start {function}")
                        or real_start(module, function, *rest))
    monkeypatch.setattr(child, "call", lambda module, function, *rest: calls.append(f"call {function}")
                        or real_call(module, function, *rest))
    monkeypatch.setattr(sqlspec, "_PARSE_IN_CHILD", True)
    url = "postgresql+psycopg://egov_ro@127.0.0.1:5432/dvc"
    refused, message = REFUSED_QUERIES[0]
    second = SOURCE.replace("id: dvc", "id: dvc2").format(url=url, password="", query=refused, timeout="5s")
    path = province(tmp_path, SOURCE.format(url=url, password="", query=QUERY, timeout="5s") + second, KPIS)
    with pytest.raises(ConfigError) as refusal:
        load_config(path, resolve_secrets=False)
    assert calls == ["start first_problems"]
    assert f"series online: {message}" in str(refusal.value) and str(refusal.value).count("series online") == 1
    calls.clear()
    load_config(province(tmp_path, SOURCE.format(url=url, password="", query=QUERY, timeout="5s"), KPIS),
                resolve_secrets=False)
    assert calls == ["start first_problems"]
    calls.clear()
    # mssql cannot be made read-only by the session: refused before its queries are checked
    path = province(tmp_path, SOURCE.format(url="mssql+pyodbc://ro@127.0.0.1/dvc", password="", query=QUERY,
                                            timeout="5s"), KPIS)
    with pytest.raises(ConfigError, match="cannot make a mssql session read-only"):
        load_config(path, resolve_secrets=False)
    assert calls == ["start first_problems"]
    assert [c for c in psutil.Process().children(recursive=True) if "agent.sources.child" in " ".join(c.cmdline())] \
        == []


# --- what a query returns: NULL is no value, shapes are stated, series fail alone ----------------------

VALUE_KPIS = (kpi("online_all", "{kind: ratio, source: dvc, series: online}")
              + kpi("total", "{kind: value, source: dvc, series: total}", '[{phase: ops, deadline: 2030-12-31, '
                    'comparator: ">=", value: 1, origin: ops}]'))


def two_series(tmp_path: Path, total_query: str, online_query: str = QUERY, extra: str = "",
               timeout: str = "10s") -> Path:
    source = SOURCE.replace("    series:\n", f"{extra}    series:\n      total: {{{{query: \"{total_query}\", "
                                              f"value: n}}}}\n")
    return province(tmp_path, source.format(url="sqlite:///dvc.db", password="", query=online_query,
                                            timeout=timeout), VALUE_KPIS)


def evaluated(path: Path) -> tuple[dict, dict]:
    """The real Agent collects once; its evaluations by KPI and its /metrics samples."""
    import asyncio

    from support.exposition import parse_samples

    from agent.app.runtime import Agent
    agent = Agent(load_config(path))
    asyncio.run(agent.collect_once())
    body, _ = agent.exposition.render(None)
    return {ev.kpi.id: ev for ev in agent.evaluate()}, parse_samples(body.decode())


def test_sql_null_is_no_value_never_zero(tmp_path: Path, sqlite_db: Path) -> None:
    # SUM over no rows is NULL: the total has no value (pending, saying why), not 0.
    evaluations, samples = evaluated(two_series(
        tmp_path, "SELECT SUM(tong) AS n FROM ho_so_thang WHERE thang >= '2999-01-01'"))
    total = evaluations["total"]
    assert total.value is None and total.pending_reason == "no_data"
    assert "the query returned NULL for the total (n): no value" in total.pending
    assert not [k for k in samples if k[0] == "egov_kpi_value" and ("kpi", "total") in k[1]]
    assert sample(samples, "egov_source_up", source="dvc") == 1  # the queries worked: NULL is an answer


def test_sql_null_in_a_units_row_leaves_that_unit_out(tmp_path: Path, sqlite_db: Path) -> None:
    query = ("SELECT ma_don_vi, SUM(CASE WHEN ma_don_vi = 'c1' THEN NULL ELSE truc_tuyen END) AS truc_tuyen, "
             "SUM(tong) AS tong FROM ho_so_thang WHERE thang >= :period_start AND thang < :period_end "
             "GROUP BY ma_don_vi")
    evaluations, _ = evaluated(two_series(tmp_path, "SELECT 1 AS n", online_query=query))
    numerator, denominator = expected("year", set(ROWS_PER_UNIT) - {"c1"})
    assert (evaluations["online_all"].numerator, evaluations["online_all"].denominator) == (numerator, denominator)


@pytest.mark.parametrize(("query", "message"), [
    ("SELECT tong AS n FROM ho_so_thang", "the query returned 75 rows; rows: one takes exactly one"),
    ("SELECT SUM(tong) AS n, 1 AS extra FROM ho_so_thang", "the query returns n, extra; the series takes exactly n"),
])
def test_a_total_must_be_one_row_of_its_columns(tmp_path: Path, sqlite_db: Path, caplog, query, message) -> None:
    runner = fetch(load_config(two_series(tmp_path, query)))
    assert runner.states["dvc"].series_up == {"online": True, "total": False}
    assert dict(runner.states["dvc"].errors) == {"wrong_shape": 1}
    assert message in caplog.text


def test_rows_per_unit_must_give_each_unit_once(tmp_path: Path, sqlite_db: Path, caplog) -> None:
    ungrouped = "SELECT ma_don_vi, truc_tuyen, tong FROM ho_so_thang WHERE thang >= :period_start"
    runner = fetch(load_config(sqlite_config(tmp_path, query=ungrouped)))
    assert dict(runner.states["dvc"].errors) == {"wrong_shape": 1}
    assert "again; rows: per_unit takes one row per unit (GROUP BY ma_don_vi)" in caplog.text


def test_the_shape_is_validated_in_the_config(tmp_path: Path) -> None:
    for extra, message in [("rows: per_unit", "rows: per_unit needs unit:"), ("rows: one, unit: u",
                                                                              "rows: one is a province total")]:
        source = SOURCE.replace("      online: {{query: \"{query}\", unit: ma_don_vi, ",
                                "      online: {{query: \"{query}\", " + extra + ", ")
        path = province(tmp_path, source.format(url="sqlite:///dvc.db", password="", query=QUERY, timeout="5s"),
                        KPIS)
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def test_one_bad_series_fails_alone_and_keeps_its_last_values(tmp_path: Path, sqlite_db: Path, caplog) -> None:
    path = two_series(tmp_path, "SELECT MAX(tong) AS n FROM ho_so_thang")  # text sorts above numbers
    loaded = load_config(path)
    runner = fetch(loaded)
    assert runner.states["dvc"].up
    _, snapshot = runner.snapshot("dvc")
    first_total = snapshot.data["total"]["year"][1][0].value
    first_at = snapshot.fetched_at_of("total")
    # A string lands in the column the total sums; the online series' table gains a unit's new month.
    with sqlite3.connect(sqlite_db) as db:
        db.execute("INSERT INTO ho_so_thang VALUES ('s1', ?, 5, 'nhiều')", (MONTHS[0].isoformat(),))
    runner2 = SourceRunner.from_config(loaded, set(UnitIndex(loaded.config).units), runner)
    import asyncio
    asyncio.run(runner2.fetch("dvc"))
    state = runner2.states["dvc"]
    _, snapshot = runner2.snapshot("dvc")
    assert state.series_up == {"online": True, "total": False} and not state.up
    assert dict(state.errors) == {"wrong_type": 1}
    assert snapshot.data["total"]["year"][1][0].value == first_total  # kept, with its own age
    assert snapshot.fetched_at_of("total") == first_at < snapshot.fetched_at_of("online")
    assert "series total failed (wrong_type): series total, period " in caplog.text
    assert "n: expected a finite number" in caplog.text or "n: expected a number" in caplog.text
    online = snapshot.data["online"]["month"][1]
    assert [r.numerator for r in online if r.unit == "s1"] == [ROWS_PER_UNIT["s1"][0] + 5]  # the new row counted


def test_a_slow_series_times_out_alone(tmp_path: Path, sqlite_db: Path) -> None:
    slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) AS n FROM n")
    started = dt.datetime.now()
    runner = fetch(load_config(two_series(tmp_path, slow, extra="    query_timeout: 1s\n", timeout="20s")))
    state = runner.states["dvc"]
    assert state.series_up == {"online": True, "total": False}
    assert dict(state.errors) == {"timeout": 1}
    assert (dt.datetime.now() - started).total_seconds() < 10
    _, snapshot = runner.snapshot("dvc")
    assert snapshot.failed["total"].startswith("timeout: ")
    assert snapshot.data["online"]["year"][1]  # the good series has its values


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


def written(postgres: Postgres) -> int:
    with postgres.admin() as db:
        return db.execute("SELECT count(*) FROM ho_so_thang WHERE ma_don_vi = 'x'").fetchone()[0]


@pytest.mark.parametrize("first", ["SET TRANSACTION READ WRITE",
                                   "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                                   "SET default_transaction_read_only = off", "SET transaction_read_only = off"])
def test_postgresql_session_cannot_be_made_read_write(tmp_path: Path, postgres: Postgres, monkeypatch,
                                                      first: str) -> None:
    """The account may write; the session the source queries through may not, whatever is said in it."""
    runner = fetch(load_config(pg_config(tmp_path, postgres, monkeypatch)))
    source = runner.states["dvc"].source
    with source.session() as connection:
        try:
            connection.exec_driver_sql(first)
        except Exception as exc:  # refused outright: the transaction's first query already ran
            assert "read-write mode must be set before any query" in str(exc)
            connection.rollback()
        with pytest.raises(Exception, match="cannot execute INSERT in a read-only transaction"):
            connection.exec_driver_sql("INSERT INTO ho_so_thang VALUES ('x', '2026-01-01', 1, 1)")
    assert written(postgres) == 0


def test_postgresql_write_hidden_in_a_function_is_refused_by_the_server(tmp_path: Path, postgres: Postgres,
                                                                       monkeypatch, caplog) -> None:
    """sqlglot cannot see into a function: the server's read-only transaction stops it. A query that
    turns the session's default off (set_config) changes nothing: the fetch never commits."""
    with postgres.admin() as db:
        db.execute("CREATE OR REPLACE FUNCTION ghi() RETURNS integer LANGUAGE sql AS "
                   "$$ INSERT INTO ho_so_thang VALUES ('x', '2026-01-01', 1, 1) RETURNING 1 $$")
    unlock = "SELECT length(set_config('default_transaction_read_only', 'off', false)) AS n"
    source = SOURCE.replace("      online: {{query", f"""\
      unlock: {{{{query: "{unlock}", value: n}}}}
      write: {{{{query: "SELECT ghi() AS n", value: n}}}}
      online: {{{{query""")
    monkeypatch.setenv("EGOV_TEST_PG", "pg-pass-for-the-test")
    url = f"postgresql+psycopg://egov_ro@127.0.0.1:{postgres.port}/postgres"
    path = province(tmp_path, source.format(url=url, password='password: "env:EGOV_TEST_PG"', query=QUERY,
                                            timeout="10s"), KPIS)
    runner = fetch(load_config(path), times=2)
    state = runner.states["dvc"]
    assert state.series_up == {"unlock": True, "write": False, "online": True}
    assert dict(state.errors) == {"query": 2}
    assert "series write failed (query): cannot execute INSERT in a read-only transaction" in caplog.text
    assert written(postgres) == 0


def test_postgresql_wrong_password_never_shows_it(tmp_path: Path, postgres: Postgres, monkeypatch, caplog) -> None:
    runner = fetch(load_config(pg_config(tmp_path, postgres, monkeypatch, env="EGOV_TEST_PG_WRONG")))
    assert dict(runner.states["dvc"].errors) == {"db_connect": 1}
    assert "password authentication failed" in caplog.text
    assert "wrong-password-xyz" not in caplog.text
    assert f"postgresql+psycopg://egov_ro@127.0.0.1:{postgres.port}/postgres" in caplog.text


# check-config reads a sql source's URL and bind parameters without SQLAlchemy (agent.sources.sqlspec); what
# it accepts and refuses, and the message, must be SQLAlchemy's.
URLS = [
    "postgresql+psycopg://egov_ro@127.0.0.1:5432/dvc", "postgresql://u@db/x", "postgresql+psycopg2://u@[::1]:5/x",
    "postgresql+psycopg://u:hunter2@db/x", "postgresql+psycopg://u:@db/x", "postgresql+psycopg://:p@db/x",
    "sqlite:///data/dvc.db", "sqlite+pysqlite:////abs/dvc.db", "sqlite:///:memory:", "sqlite://", "sqlite:///",
    "sqlite:///file:x.db?mode=ro&uri=true", "sqlite:///%3Amemory%3A", "sqlite:///fi%6Ce:x", "mysql+pymysql://u@h/d",
    "mariadb://u@h:3306/d?charset=utf8mb4", "mssql+pyodbc://u@dsn", "oracle+oracledb://u@db/x", "nosuch://u@db/x",
    "postgresql+nosuch://u@db/x", "postgresql+psycopg://u@db:notaport/x", "postgresql+psycopg://u@db:٣/x",
    "postgresql+psycopg://u@db/x\nmore", "not a url", "", "://u@h/x", "postgresql+psycopg://u@h/x?a=1&a=2",
    "POSTGRESQL://u@h/x", "postgresql+psycopg://u%3Ap@h/x", "postgresql+psycopg://u@h/x#frag",
    "postgresql+psycopg://u%2Fv%40w+x%20y@db:5432/d%20b/c%3F", "mysql+pymysql://u@[fe80::1%25eth0]:3306/d",
    "postgresql+psycopg://@db/x", "postgresql+psycopg://db:/x", "postgresql+psycopg://u@/x?host=/run/postgresql",
]


def _outcome(check, url: str) -> str:
    try:
        return "ok " + check(url)
    except ValueError as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize("url", URLS + [u.replace("@", "@@", 1) for u in URLS] + [u + "/" for u in URLS])
def test_the_url_check_without_sqlalchemy_is_sqlalchemys(url: str) -> None:
    from sqlalchemy.engine import URL, make_url

    from agent.sources import sqlspec

    assert _outcome(sqlspec._check_url, url) == _outcome(sqlspec._check_url_with_sqlalchemy, url)
    known = sqlspec.known_url(url)
    if known is not None:  # what the fast path read is what make_url reads
        parsed = make_url(url)
        assert known == (parsed.drivername, parsed.password, parsed.database)
        assert sqlspec.backend_name(url) == parsed.get_backend_name()
    if _outcome(sqlspec._check_url, url).startswith("ok "):  # what the source logs and contacts: make_url's reading
        parsed = make_url(url)
        parts = sqlspec.url_parts(url)
        assert (parts.drivername, parts.username, parts.host, parts.port, parts.database) == (
            parsed.drivername, parsed.username, parsed.host, parsed.port, parsed.database)
        assert parts.render() == URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port,
                                            parsed.database).render_as_string()


def test_every_known_driver_loads_in_sqlalchemy() -> None:
    from sqlalchemy.engine import make_url

    from agent.sources.sqlspec import KNOWN_DRIVERS

    for name in sorted(KNOWN_DRIVERS):
        url = make_url(f"{name}://u@h/x")
        assert url.get_dialect() is not None and url.drivername == name


@pytest.mark.parametrize("query", [
    "SELECT 1 WHERE d >= :period_start AND d < :period_end", "SELECT x::int, :period FROM t", "SELECT '\\:x', :a:b",
    "SELECT :since", "SELECT :Tên_đơn_vị, :period_name, :period_last_day", "SELECT a::text:: :period", "x:1 :2a :_",
])
def test_bind_parameters_are_found_as_sqlalchemy_finds_them(query: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.sql.elements import TextClause

    from agent.sources.sqlspec import BIND_PATTERN, bind_names

    assert (BIND_PATTERN.pattern, BIND_PATTERN.flags) == (TextClause._bind_params_regex.pattern,
                                                          TextClause._bind_params_regex.flags)
    assert bind_names(query) == set(text(query)._bindparams)


def test_check_config_of_a_sql_source_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    url = "postgresql+psycopg://egov_ro@127.0.0.1:5432/dvc"
    path = province(tmp_path, SOURCE.format(url=url, password="", query=QUERY, timeout="5s"), KPIS)
    code = ("import sys; from agent.config.loading import load_config; "
            f"load_config({str(path)!r}, resolve_secrets=False, load_kinds=False); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
