"""SQL databases of application systems (any SQLAlchemy URL), read strictly read-only.

Each series is one parameterised query run once per reporting period with ``:period_start`` and
``:period_end`` (exclusive; ``:period_last_day`` inclusive) bound as dates, never pasted into the
text; its result columns are mapped to unit, numerator and denominator (or value). SQL NULL counts
as 0, since ``SUM`` over no rows gives NULL in a quiet period.

Read-only is enforced by the agent, not hoped for: SQLite is opened with a ``mode=ro`` URI;
PostgreSQL and MySQL sessions are set read-only on connect (``SET SESSION CHARACTERISTICS AS
TRANSACTION READ ONLY``), so even a ``WITH ... INSERT`` is refused by the server. Other dialects
need ``read_only: account`` to say the account itself can only read.

Drivers block, so a fetch runs on the runner's thread pool; it is bounded by the source's timeout
inside the database too (SQLite progress handler, PostgreSQL ``statement_timeout`` and
``connect_timeout``), so a slow query does not outlive the fetch. The password comes from a secret
reference and is put into the URL only in memory; logs show the URL without it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import AfterValidator, Field, model_validator
from sqlalchemy import Date, String, bindparam, create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from agent.periods import Period
from agent.secrets import Secret, SecretValue
from agent.sources.base import (
    FetchResult,
    Record,
    SeriesName,
    SeriesSpec,
    Source,
    SourceError,
    SourceSpec,
    first_line,
    make_record,
    period_values,
    redact,
    unit_code,
)

BINDS = {"period_start": Date, "period_end": Date, "period_last_day": Date, "period": String, "period_name": String}
READ_ONLY_SQL = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
}
_LEADING_COMMENTS = re.compile(r"^\s*((--[^\n]*\n)|(/\*.*?\*/)|\s)*", re.S)


def _check_query(query: str) -> str:
    body = _LEADING_COMMENTS.sub("", query, count=1)
    if not re.match(r"(?i)(select|with)\b", body):
        raise ValueError("a query must be a single SELECT (or WITH ... SELECT)")
    unknown = sorted(set(text(query)._bindparams) - set(BINDS))
    if unknown:
        raise ValueError(f"unknown bind parameter :{unknown[0]}; known: {', '.join(':' + b for b in BINDS)}")
    return query


def _check_url(raw: str) -> str:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError("not an SQLAlchemy URL (dialect+driver://user@host:port/database)") from None
    if url.password is not None:
        raise ValueError("the password does not belong in the URL; use password: with a secret reference")
    try:
        url.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"unknown SQL dialect {url.drivername!r}") from None
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"
                                               or url.database.startswith("file:")):
        raise ValueError("a SQLite source needs a database file: sqlite:///path/to/file.db")
    return raw


class SqlSeries(SeriesSpec):
    query: Annotated[str, AfterValidator(_check_query)]
    unit: str | None = Field(None, description="Column holding the unit code (none: a province total)")


class SqlSpec(SourceSpec):
    kind: Literal["sql"]
    url: Annotated[str, AfterValidator(_check_url)]
    password: Secret | None = None
    read_only: Literal["session", "account"] = Field(
        "session", description="session: the agent makes the session read-only (SQLite, PostgreSQL, MySQL); "
                               "account: the database account can only read (other dialects)")
    series: dict[SeriesName, SqlSeries] = Field(min_length=1)

    @model_validator(mode="after")
    def _read_only_possible(self):
        backend = make_url(self.url).get_backend_name()
        if self.read_only == "session" and backend != "sqlite" and backend not in READ_ONLY_SQL:
            raise ValueError(f"the agent cannot make a {backend} session read-only; use a read-only account "
                             "and say read_only: account")
        return self


class SqlSource(Source):
    kind = "sql"
    Spec = SqlSpec

    def __init__(self, spec: SqlSpec, context) -> None:
        super().__init__(spec, context)
        self.url = make_url(spec.url)
        self.backend = self.url.get_backend_name()
        self._engine: Engine | None = None
        self._statements = {}
        for name, series in spec.series.items():
            clause = text(series.query)
            used = [bindparam(n, type_=BINDS[n]()) for n in clause._bindparams]
            self._statements[name] = clause.bindparams(*used) if used else clause

    def describe(self) -> str:
        url = self.url
        if self.backend == "sqlite":
            return f"{url.drivername}:///{self._sqlite_path()}"
        return URL.create(url.drivername, url.username, None, url.host, url.port, url.database).render_as_string()

    def hosts(self) -> list[str]:
        host = self.url.host
        return [host] if host and not host.startswith("/") else []

    def secrets(self) -> list[SecretValue]:
        return [self.spec.password] if self.spec.password is not None else []

    def _sqlite_path(self) -> str:
        return str(self.context.resolve(self.url.database or ""))

    def engine(self) -> Engine:
        """The engine, read-only by construction (also used by tests to prove writes are refused)."""
        if self._engine is not None:
            return self._engine
        if self.backend == "sqlite":
            url = make_url(f"sqlite+pysqlite:///file:{quote(self._sqlite_path())}?mode=ro&uri=true")
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

    async def fetch(self, periods: dict[str, Period]) -> FetchResult:
        deadline = time.monotonic() + self.spec.timeout
        return await self.context.run_blocking(lambda: self._fetch(periods, deadline))

    def _fetch(self, periods: dict[str, Period], deadline: float) -> FetchResult:
        try:
            engine = self.engine()
            connection = engine.connect()
        except (ImportError, NoSuchModuleError) as exc:
            raise SourceError("driver", f"the database driver is not installed: {first_line(exc)}") from None
        except SQLAlchemyError as exc:
            raise SourceError("db_connect", self._message(exc)) from None
        data: dict[str, dict[str, list[Record]]] = {name: {} for name in self.spec.series}
        try:
            with connection:
                self._bound(connection, deadline)
                for name, series in self.spec.series.items():
                    for kind, period in periods.items():
                        data[name][kind] = self._query(connection, name, series, period)
        except SQLAlchemyError as exc:
            message = self._message(exc)
            reason = "timeout" if "interrupted" in message or "statement timeout" in message else "query"
            raise SourceError(reason, message) from None
        return FetchResult(data)

    def _bound(self, connection, deadline: float) -> None:
        """Stop the database's own work at the fetch's deadline."""
        if self.backend == "sqlite":
            connection.connection.dbapi_connection.set_progress_handler(
                lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        elif self.backend == "postgresql":
            remaining = max(1, int((deadline - time.monotonic()) * 1000))
            connection.exec_driver_sql(f"SET statement_timeout = {remaining}")

    def _query(self, connection, name: str, series: SqlSeries, period: Period) -> list[Record]:
        values: dict[str, Any] = period_values(period)
        for key in ("period_start", "period_end", "period_last_day"):
            values[key] = dt.date.fromisoformat(values[key])
        statement = self._statements[name]
        params = {k: v for k, v in values.items() if k in statement._bindparams}
        result = connection.execute(statement, params).mappings()
        columns = set(result.keys())
        needed = [c for c in (series.unit, series.numerator, series.denominator, series.value) if c]
        missing = [c for c in needed if c not in columns]
        if missing:
            raise SourceError("missing_field", f"series {name}: the query returns no column {missing[0]!r} "
                                               f"(it returns {', '.join(sorted(columns))})")
        records = []
        for i, row in enumerate(result, start=1):
            where = f"series {name}, period {period.name}, row {i}"
            try:
                unit = unit_code(row[series.unit], series.unit) if series.unit else None
                records.append(make_record(unit, series, lambda _role, column, row=row: _null_is_zero(row[column])))
            except ValueError as exc:
                raise SourceError("wrong_type", f"{where}: {exc}") from None
        return records

    def _message(self, exc: SQLAlchemyError) -> str:
        """The driver's own first line (no SQL, no parameters, no URL), with secrets scrubbed."""
        origin = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        return redact(first_line(origin), self.secrets())

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _null_is_zero(value: Any) -> Any:
    return 0 if value is None else value


def _session_read_only(statement: str):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()
        dbapi_connection.commit()  # a SET inside a transaction that is later rolled back would not stick
    return on_connect


SOURCE = SqlSource
