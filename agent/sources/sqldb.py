"""The sql source's database side: SQLAlchemy, the driver and the queries, run in a child process.

agent.sources.sql (the source the agent holds) hands each fetch to a short-lived child process
(agent.sources.child) that imports this module, runs :func:`fetch` and exits, so SQLAlchemy and the
database driver (~11 MiB) never stay in the long-running agent. What a fetch does is unchanged: see
agent.sources.sql for what a query must return and how read-only is enforced.

Drivers block; each query is bounded inside the database too (SQLite progress handler, PostgreSQL
``statement_timeout`` and ``connect_timeout``), so a slow query does not outlive the fetch's deadline
(a ``time.monotonic()`` instant: the clock is the machine's, shared by the agent and its child). The
password is put into the URL only in memory; messages are scrubbed of it.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import quote

from sqlalchemy import Date, String, bindparam, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from agent.domain.periods import Period
from agent.domain.secrets import SecretValue, redact
from agent.sources.base import (
    FetchResult,
    Record,
    SourceError,
    first_line,
    make_record,
    period_values,
    unit_code,
)
from agent.sources.child import FetchAnswer, answer_of
from agent.sources.sqlspec import BIND_NAMES, READ_ONLY_SQL, SqlSeries, SqlSpec

BINDS = {"period_start": Date, "period_end": Date, "period_last_day": Date, "period": String, "period_name": String}
assert tuple(BINDS) == BIND_NAMES
MAX_ROWS = 100_000  # one row per unit of a province is a few thousand at most


class SqlDatabase:
    """One source's database, read-only by construction: the engine, a checked session, the fetch."""

    def __init__(self, spec: SqlSpec, sqlite_path: str) -> None:
        self.spec = spec
        self.sqlite_path = sqlite_path  # the SQLite file, resolved against the configuration's folder
        self.url = make_url(spec.url)
        self.backend = self.url.get_backend_name()
        self._engine: Engine | None = None
        self._statements = {}
        for name, series in spec.series.items():
            clause = text(series.query)
            used = [bindparam(n, type_=BINDS[n]()) for n in clause._bindparams]
            self._statements[name] = clause.bindparams(*used) if used else clause

    def secrets(self) -> list[SecretValue]:
        return [self.spec.password] if self.spec.password is not None else []

    def engine(self) -> Engine:
        """The engine, read-only by construction (also used by tests to prove writes are refused)."""
        if self._engine is not None:
            return self._engine
        if self.backend == "sqlite":
            url = make_url(f"sqlite+pysqlite:///file:{quote(self.sqlite_path)}?mode=ro&uri=true")
            engine = create_engine(url, poolclass=NullPool)
        else:
            url = self.url
            if self.spec.password is not None:
                url = url.set(password=self.spec.password.reveal())
            connect_args: dict[str, Any] = {}
            if self.backend == "postgresql" and url.get_driver_name() in ("psycopg", "psycopg2"):
                connect_args["connect_timeout"] = max(1, math.ceil(self.spec.timeout))
            engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
            statement = READ_ONLY_SQL.get(self.backend) if self.spec.read_only == "session" else None
            if statement is not None:
                event.listen(engine, "connect", _session_read_only(statement))
        self._engine = engine
        return engine

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """A connection as the queries get it: read-only, checked, with a transaction begun read-only that
        nothing can make read-write any more (also used by tests to prove writes are refused)."""
        try:
            connection = self.engine().connect()
        except (ImportError, NoSuchModuleError) as exc:
            raise SourceError("driver", f"the database driver is not installed: {first_line(exc)}") from None
        except SQLAlchemyError as exc:
            raise SourceError("db_connect", self._message(exc)) from None
        with connection:
            self._check_read_only(connection)
            yield connection

    def fetch(self, periods: dict[str, Period], deadline: float) -> FetchResult:
        result = FetchResult({})
        per_query = self.spec.query_timeout or self.spec.timeout / max(1, len(self.spec.series) * len(periods))
        with self.session() as connection:
            for name, series in self.spec.series.items():
                try:
                    by_period = {}
                    for kind, period in periods.items():
                        self._bound(connection, min(deadline, time.monotonic() + per_query))
                        by_period[kind], why = self._query(connection, name, series, period)
                        if why:
                            result.no_value[(name, kind)] = why
                    result.data[name] = by_period
                except (SQLAlchemyError, SourceError) as exc:
                    result.failed[name] = exc if isinstance(exc, SourceError) else self._query_error(exc)
                    connection.rollback()  # PostgreSQL refuses every later statement of a failed transaction
                    self._check_read_only(connection)  # the new transaction is read-only too, and locked so
        if not result.data:  # every series failed: the source failed
            raise next(iter(result.failed.values()))
        return result

    def _query_error(self, exc: SQLAlchemyError) -> SourceError:
        message = self._message(exc)
        timed_out = "interrupted" in message or "statement timeout" in message
        return SourceError("timeout" if timed_out else "query", message)

    def _check_read_only(self, connection: Connection) -> None:
        """PostgreSQL: the transaction must be read-only, and this SELECT, its first query, locks it so
        (``SET TRANSACTION READ WRITE`` is refused after any query). A session that is not read-only (a
        pooler that dropped the setting) fetches nothing. The transaction is never committed, so no
        ``set_config`` a query makes outlives it."""
        if self.backend != "postgresql" or self.spec.read_only != "session":
            return
        try:
            current, default = connection.exec_driver_sql(
                "SELECT current_setting('transaction_read_only'), current_setting('default_transaction_read_only')"
            ).one()
        except SQLAlchemyError as exc:
            raise SourceError("query", self._message(exc)) from None
        if (current, default) != ("on", "on"):
            raise SourceError("not_read_only", f"the session is not read-only (transaction_read_only {current}, "
                                               f"default_transaction_read_only {default}); nothing was queried")

    def _bound(self, connection, deadline: float) -> None:
        """Stop the database's own work at the query's deadline."""
        if self.backend == "sqlite":
            connection.connection.dbapi_connection.set_progress_handler(
                lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        elif self.backend == "postgresql":
            remaining = max(1, int((deadline - time.monotonic()) * 1000))
            connection.exec_driver_sql(f"SET statement_timeout = {remaining}")

    def _query(self, connection, name: str, series: SqlSeries, period: Period) -> tuple[list[Record], str]:
        """The period's records, and why there are none where the query said NULL."""
        values: dict[str, Any] = period_values(period)
        for key in ("period_start", "period_end", "period_last_day"):
            values[key] = dt.date.fromisoformat(values[key])
        statement = self._statements[name]
        params = {k: v for k, v in values.items() if k in statement._bindparams}
        result = connection.execute(statement, params).mappings()
        self._check_columns(name, series, list(result.keys()))
        rows = result.fetchmany(MAX_ROWS + 1)
        if len(rows) > MAX_ROWS:
            raise SourceError("wrong_shape", f"series {name}, period {period.name}: more than {MAX_ROWS} rows; "
                                             f"a query returns a total or one row per unit")
        if series.expected_rows == "one" and len(rows) > 1:
            raise SourceError("wrong_shape", f"series {name}, period {period.name}: the query returned {len(rows)} "
                                             f"rows; rows: one takes exactly one (a province total: aggregate "
                                             f"with SUM or COUNT, or map unit: for one row per unit)")
        records: list[Record] = []
        nulls: list[str] = []
        seen: set[str] = set()
        for i, row in enumerate(rows, start=1):
            where = f"series {name}, period {period.name}, row {i}"
            try:
                unit = unit_code(row[series.unit], series.unit) if series.unit else None
                if unit is not None and unit in seen:
                    raise SourceError("wrong_shape", f"{where}: unit {unit!r} again; rows: per_unit takes one row "
                                                     f"per unit (GROUP BY {series.unit})")
                if unit is not None:
                    seen.add(unit)
                null = [c for c in series.columns if c != series.unit and row[c] is None]
                if null:  # NULL is no value, never 0
                    nulls.append(f"{unit or 'the total'} ({', '.join(null)})")
                    continue
                records.append(make_record(unit, series, partial(_column, row)))
            except ValueError as exc:
                raise SourceError("wrong_type", f"{where}: {exc}") from None
        if records or not nulls:
            return records, ""
        return records, f"the query returned NULL for {', '.join(nulls[:5])}: no value"

    @staticmethod
    def _check_columns(name: str, series: SqlSeries, columns: list[str]) -> None:
        missing = [c for c in series.columns if c not in columns]
        if missing:
            raise SourceError("missing_field", f"series {name}: the query returns no column {missing[0]!r} "
                                               f"(it returns {', '.join(sorted(columns))})")
        extra = [c for c in columns if c not in series.columns]
        if extra or len(columns) != len(set(columns)):
            raise SourceError("wrong_shape", f"series {name}: the query returns {', '.join(columns)}; the series "
                                             f"takes exactly {', '.join(series.columns)}")

    def _message(self, exc: SQLAlchemyError) -> str:
        """The driver's own first line (no SQL, no parameters, no URL), with secrets scrubbed."""
        origin = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        return redact(first_line(origin), self.secrets())

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _column(row: Any, _role: str, column: str) -> Any:
    return row[column]


def _session_read_only(statement: str):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()
        dbapi_connection.commit()  # a SET inside a transaction that is later rolled back would not stick
    return on_connect


# --- in the child ----------------------------------------------------------------------------


def fetch(spec: SqlSpec, sqlite_path: str, periods: dict[str, Period], deadline: float) -> FetchAnswer:
    """In the child: one fetch of every series and period, as agent.sources.child reads it back."""
    database = SqlDatabase(spec, sqlite_path)
    try:
        result = database.fetch(periods, deadline)
    except SourceError as exc:
        return "failed", exc.reason, exc.message
    finally:
        database.close()
    return answer_of(result)
