"""SQL databases of application systems (any SQLAlchemy URL), read strictly read-only.

Each series is one parameterised query run once per reporting period with ``:period_start`` and
``:period_end`` (exclusive; ``:period_last_day`` inclusive) bound as dates, never pasted into the
text; its result columns are mapped to unit, numerator and denominator (or value).

What a query must return is stated, and anything else is refused, never summed or guessed: exactly
the mapped columns, and ``rows: one`` (a province total: one row; the default without ``unit``) or
``rows: per_unit`` (one row per unit code; the default with ``unit``). SQL NULL is "no value",
never 0: a NULL total leaves the period without a value (the KPI pending, saying so), a NULL in a
unit's row leaves that unit out. Each series stands alone: one whose query fails (an error, a
string where a number belongs, its ``query_timeout``) keeps its last good values and is reported,
while the other series take their new ones.

Read-only is enforced three times over. check-config parses every query with sqlglot in the
database's dialect and accepts a single SELECT (set operations and WITH ... SELECT included) with
no INSERT, UPDATE, DELETE, MERGE, DDL, SELECT INTO, locking clause or other command anywhere in it,
CTEs included. Then the database itself refuses writes: SQLite is opened with a ``mode=ro`` URI;
PostgreSQL and MySQL sessions are set read-only on connect (``SET SESSION CHARACTERISTICS AS
TRANSACTION READ ONLY``) and, on PostgreSQL, ``default_transaction_read_only`` and
``transaction_read_only`` are checked on every fetch before any query runs (a session that is not
read-only fetches nothing). A query cannot undo it: it is one statement, so it cannot say ``SET
TRANSACTION READ WRITE`` first. Other dialects need ``read_only: account`` to say the account itself
can only read.

Each fetch runs in a short-lived child process (agent.sources.child running
agent.sources.sqldb.fetch, from the runner's thread pool), so SQLAlchemy and the driver never enter
the long-running agent (~11 MiB it would keep for good). The child gets the settings (the password
among them) on its stdin, never its command line, and answers plain data: the records, and each
failure as its reason and message. Each query is bounded inside the database too (SQLite progress
handler, PostgreSQL ``statement_timeout`` and ``connect_timeout``), so a slow query does not outlive
the fetch; a child that outlives the fetch's timeout is killed (``timeout``), one that dies is
counted as ``fetch_process`` and the next fetch starts a new one. The previous values are kept
either way. Logs show the URL without the password.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agent.domain.periods import Period
from agent.domain.secrets import SecretValue
from agent.sources import child
from agent.sources.base import FetchResult, Source
from agent.sources.sqlspec import SqlSpec, url_parts


class SqlSource(Source):
    kind = "sql"
    Spec = SqlSpec

    def __init__(self, spec: SqlSpec, context) -> None:
        super().__init__(spec, context)
        self.url = url_parts(spec.url)
        self.backend = self.url.drivername.split("+")[0]
        self._database: Any = None  # an in-process agent.sources.sqldb.SqlDatabase, for the tests only

    def describe(self) -> str:
        url = self.url
        if self.backend == "sqlite":
            return f"{url.drivername}:///{self._sqlite_path()}"
        return url.render()

    def hosts(self) -> list[str]:
        host = self.url.host
        return [host] if host and not host.startswith("/") else []

    def secrets(self) -> list[SecretValue]:
        return [self.spec.password] if self.spec.password is not None else []

    def _sqlite_path(self) -> str:
        return str(self.context.resolve(self.url.database or ""))

    async def fetch(self, periods: dict[str, Period]) -> FetchResult:
        deadline = time.monotonic() + self.spec.timeout
        return await self.context.run_blocking(lambda: self._fetch(periods, deadline))

    def _fetch(self, periods: dict[str, Period], deadline: float) -> FetchResult:
        """One fetch in a child process; its answer back as a FetchResult, or the failure as a SourceError."""
        return child.fetch("agent.sources.sqldb", "fetch", (self.spec, self._sqlite_path(), periods, deadline),
                           deadline)

    # -- in-process access to the database, for the tests that prove writes are refused -------------
    def database(self) -> Any:
        """The source's database in this process (imports SQLAlchemy: tests only; the agent fetches in a child)."""
        if self._database is None:
            from agent.sources.sqldb import SqlDatabase

            self._database = SqlDatabase(self.spec, self._sqlite_path())
        return self._database

    def engine(self) -> Any:
        return self.database().engine()

    @contextmanager
    def session(self) -> Iterator[Any]:
        with self.database().session() as connection:
            yield connection

    async def close(self) -> None:
        if self._database is not None:
            self._database.close()


SOURCE = SqlSource
