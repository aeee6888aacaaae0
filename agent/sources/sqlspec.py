"""The sql source's settings and their checks, apart from agent.sources.sql so that validating a
configuration (check-config, and every start) does not import SQLAlchemy (~0.2 s, most of the sql
source's cost at check-config).

The URL is read with SQLAlchemy's own grammar (``make_url``'s pattern, repeated here) and accepted
without SQLAlchemy only when it is whole and names a dialect in ``KNOWN_DRIVERS`` (each checked against
SQLAlchemy in tests/test_sources_sql.py); any other URL, and every refusal of form or dialect, goes
through SQLAlchemy itself, so what is refused, and how it is said, is SQLAlchemy's as before. Bind
parameters are found with SQLAlchemy's TextClause pattern (the tests compare the two).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote

import sqlglot
from pydantic import AfterValidator, Field, model_validator
from sqlglot import exp

from agent.domain.models import Duration
from agent.domain.secrets import Secret
from agent.sources.base import SeriesName, SeriesSpec, SourceSpec

BIND_NAMES = ("period_start", "period_end", "period_last_day", "period", "period_name")
READ_ONLY_SQL = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
}
# sqlglot's dialect for each SQLAlchemy backend (others are parsed as generic SQL).
DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite", "mssql": "tsql",
            "oracle": "oracle"}
# Anything in a query's tree that writes, locks, or is not a plain query.
WRITES: tuple[type, ...] = (exp.DML, exp.DDL, exp.Merge, exp.Into, exp.Lock, exp.Command, exp.Set,
                                            exp.Copy, exp.Transaction, exp.Commit, exp.Grant, exp.Pragma, exp.Use,
                                            exp.TruncateTable, exp.Alter)
# SQLAlchemy's dialects that load without their driver installed (the tests load each with SQLAlchemy).
KNOWN_DRIVERS = frozenset({
    "sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+pg8000",
    "mysql", "mysql+pymysql", "mysql+mysqldb", "mysql+mysqlconnector", "mariadb", "mariadb+pymysql",
    "mariadb+mariadbconnector", "mssql", "mssql+pyodbc", "mssql+pymssql", "oracle", "oracle+oracledb",
    "oracle+cx_oracle"})
# sqlalchemy.engine.url._parse_url's pattern, and TextClause._bind_params_regex.
URL_PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
        """,
    re.X,
)
BIND_PATTERN = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])", re.UNICODE)


def check_read_only_select(query: str, backend: str) -> None:
    """A single SELECT that writes nothing anywhere (a CTE included), parsed in the database's dialect."""
    dialect = DIALECTS.get(backend)
    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"the query does not parse as {dialect or 'SQL'}: {first[:200]}") from None
    if not statements:
        raise ValueError("the query is empty (a comment only?)")
    if len(statements) != 1:
        raise ValueError(f"a query must be a single SELECT; this is {len(statements)} statements")
    statement = statements[0]
    if not isinstance(statement, exp.Select | exp.SetOperation):
        raise ValueError(f"a query must be a single SELECT (or WITH ... SELECT); this is {_kind(statement)}")
    for node in statement.walk():
        if isinstance(node, WRITES):
            raise ValueError(f"a query must only read; this one has {_kind(node)} in it")


def _kind(node: Any) -> str:
    if isinstance(node, exp.Command):
        return f"a {str(node.this).upper()} command"
    if isinstance(node, exp.Into):
        return "SELECT ... INTO (it creates a table)"
    if isinstance(node, exp.Lock):
        return "a locking clause (FOR UPDATE/SHARE)"
    return f"an {node.key.upper()}" if node.key[:1] in "aeiou" else f"a {node.key.upper()}"


def bind_names(query: str) -> set[str]:
    """The bind parameters SQLAlchemy's text() finds in a query."""
    return set(BIND_PATTERN.findall(query))


def _check_query(query: str) -> str:
    unknown = sorted(bind_names(query) - set(BIND_NAMES))
    if unknown:
        raise ValueError(f"unknown bind parameter :{unknown[0]}; known: {', '.join(':' + b for b in BIND_NAMES)}")
    return query


def known_url(raw: str) -> tuple[str, str | None, str | None] | None:
    """(drivername, password, database) as make_url reads them, for a URL SQLAlchemy is sure to accept; else None."""
    m = URL_PATTERN.match(raw)
    if m is None or m.end() != len(raw) or m["name"] not in KNOWN_DRIVERS:
        return None
    # an empty port ("db:/x") too: SQLAlchemy refuses it
    if m["port"] is not None and not (m["port"].isascii() and m["port"].isdigit()):
        return None
    password, database = m["password"], m["database"]
    return m["name"], None if password is None else unquote(password), None if database is None else unquote(database)


@dataclass(frozen=True)
class SqlUrl:
    """A URL's parts as ``make_url`` reads them, less the password and the query (what logs may show)."""

    drivername: str
    username: str | None
    host: str | None
    port: int | None
    database: str | None

    def render(self) -> str:
        """``URL.create(drivername, username, None, host, port, database).render_as_string()``, as SQLAlchemy
        writes it (tests/test_sources_sql.py compares the two)."""
        out = self.drivername + "://"
        if self.username is not None:
            out += quote(self.username, safe=" +") + "@"
        if self.host is not None:
            out += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            out += f":{self.port}"
        if self.database is not None:
            out += "/" + quote(self.database, safe=" +/")
        return out


def url_parts(raw: str) -> SqlUrl:
    """The parts of a URL the settings accepted: read with make_url's pattern where ``known_url`` vouches for
    it, by SQLAlchemy itself otherwise (so that the long-running agent does not import it for the usual URLs)."""
    m = URL_PATTERN.match(raw)
    if known_url(raw) is not None and m is not None:
        username, database = m["username"], m["database"]
        return SqlUrl(m["name"], None if username is None else unquote(username), m["ipv4host"] or m["ipv6host"],
                      int(m["port"]) if m["port"] else None, None if database is None else unquote(database))
    from sqlalchemy.engine import make_url

    url = make_url(raw)
    return SqlUrl(url.drivername, url.username, url.host, url.port, url.database)


def backend_name(url: str) -> str:
    """URL.get_backend_name() of a URL make_url accepts (its drivername is the pattern's name)."""
    m = URL_PATTERN.match(url)
    assert m is not None, "backend_name of a URL that did not pass _check_url"
    return m["name"].split("+")[0]


def _check_url(raw: str) -> str:
    known = known_url(raw)
    if known is None:
        return _check_url_with_sqlalchemy(raw)
    drivername, password, database = known
    if password is not None:
        raise ValueError("the password does not belong in the URL; use password: with a secret reference")
    if drivername.split("+")[0] == "sqlite" and (not database or database == ":memory:"
                                                 or database.startswith("file:")):
        raise ValueError("a SQLite source needs a database file: sqlite:///path/to/file.db")
    return raw


def _check_url_with_sqlalchemy(raw: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

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
    rows: Literal["one", "per_unit"] | None = Field(
        None, description="What the query returns: one (a province total, exactly one row; the default without "
                          "unit) or per_unit (one row per unit code; the default with unit). Any other result, "
                          "or a column the series does not map, is refused")

    @model_validator(mode="after")
    def _rows_match_unit(self):
        if self.rows == "per_unit" and self.unit is None:
            raise ValueError("rows: per_unit needs unit: (the column holding the unit code)")
        if self.rows == "one" and self.unit is not None:
            raise ValueError("rows: one is a province total; it takes no unit: column")
        return self

    @property
    def expected_rows(self) -> str:
        return self.rows or ("per_unit" if self.unit else "one")

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.unit, self.numerator, self.denominator, self.value) if c]


class SqlSpec(SourceSpec):
    kind: Literal["sql"]
    url: Annotated[str, AfterValidator(_check_url)]
    password: Secret | None = None
    read_only: Literal["session", "account"] = Field(
        "session", description="session: the agent makes the session read-only (SQLite, PostgreSQL, MySQL); "
                               "account: the database account can only read (other dialects)")
    query_timeout: Duration | None = Field(
        None, description="Longest one query may run; one that runs longer fails its series only (default: the "
                          "source's timeout shared by the queries of a fetch, series x periods)")
    series: dict[SeriesName, SqlSeries] = Field(min_length=1)

    @model_validator(mode="after")
    def _read_only_possible(self):
        backend = backend_name(self.url)
        if self.read_only == "session" and backend != "sqlite" and backend not in READ_ONLY_SQL:
            raise ValueError(f"the agent cannot make a {backend} session read-only; use a read-only account "
                             "and say read_only: account")
        for name, series in self.series.items():
            try:
                check_read_only_select(series.query, backend)
            except ValueError as exc:
                raise ValueError(f"series {name}: {exc}") from None
        if self.query_timeout is not None and self.query_timeout > self.timeout:
            raise ValueError(f"query_timeout ({self.query_timeout:g}s) is longer than the timeout "
                             f"({self.timeout:g}s)")
        return self


SPEC = SqlSpec
