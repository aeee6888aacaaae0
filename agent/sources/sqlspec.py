"""The sql source's settings and their checks, apart from agent.sources.sql so that validating a
configuration (check-config, and every start) does not import SQLAlchemy (~0.2 s, most of the sql
source's cost at check-config).

The URL is read with SQLAlchemy's own grammar (``make_url``'s pattern, repeated here) and accepted
without SQLAlchemy only when it is whole and names a dialect in ``KNOWN_DRIVERS`` (each checked against
SQLAlchemy in tests/test_sources_sql.py); any other URL, and every refusal of form or dialect, goes
through SQLAlchemy itself, so what is refused, and how it is said, is SQLAlchemy's as before. Bind
parameters are found with SQLAlchemy's TextClause pattern (the tests compare the two). Each query is
parsed with sqlglot (agent.sources.sqlcheck): here, or in a child process in ``egov-agent run``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import quote, unquote

from pydantic import AfterValidator, Field, model_validator

from agent.domain.models import Duration
from agent.domain.secrets import Secret
from agent.sources import child
from agent.sources.base import SeriesName, SeriesSpec, SourceSpec

BIND_NAMES = ("period_start", "period_end", "period_last_day", "period", "period_name")
READ_ONLY_SQL = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
}
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


# Where the queries are parsed: in this process (check-config and the other commands that exit), or in a
# short-lived child (``egov-agent run``, which says so with parse_queries_in_child(), so that sqlglot's
# ~7 MiB never stay in the long-running agent). The same code and the same messages either way.
_PARSE_IN_CHILD = False
PARSE_TIMEOUT = 60.0  # seconds: a child that cannot parse a few queries in this time is stuck


def parse_queries_in_child(enabled: bool = True) -> None:
    """This process runs for long: parse the sql sources' queries in a child process from now on."""
    global _PARSE_IN_CHILD
    _PARSE_IN_CHILD = enabled


Job = tuple[tuple[tuple[str, str], ...], str]  # the (series, query) pairs of one source, and its backend
_local = threading.local()  # .prefetched: what prefetched_checks started in this thread (validators run in it)


def _prefetched() -> dict[Job, _Share]:
    if not hasattr(_local, "prefetched"):
        _local.prefetched = {}
    return _local.prefetched


def read_only_problem(queries: list[tuple[str, str]], backend: str) -> tuple[str, str] | None:
    """(series, why) for the first query that is not a single read-only SELECT (agent.sources.sqlcheck)."""
    job: Job = (tuple(queries), backend)
    started = _prefetched().pop(job, None)
    if started is not None:
        try:
            return _answer(started.result())
        except child.ChildFailed as exc:  # as a child of its own would have failed
            raise ValueError(f"the queries could not be checked: {exc.message}") from None
    if not _PARSE_IN_CHILD:
        from agent.sources.sqlcheck import first_problem

        return first_problem(queries, backend)
    try:
        answer = child.call("agent.sources.sqlcheck", "first_problem", (queries, backend), PARSE_TIMEOUT)
    except child.ChildFailed as exc:
        raise ValueError(f"the queries could not be checked: {exc.message}") from None
    return _answer(answer)


def _answer(answer: object) -> tuple[str, str] | None:
    if answer is None:
        return None
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise ValueError("the queries could not be checked: the check process answered something else")
    return str(answer[0]), str(answer[1])


def raw_job(raw: object) -> Job | None:
    """The check a raw sql source's validation will ask for, when its URL and queries are plainly well
    formed; None otherwise (its validation then checks, or refuses, it on its own)."""
    if not isinstance(raw, dict) or raw.get("kind") != "sql":
        return None
    url, series = raw.get("url"), raw.get("series")
    if not isinstance(url, str) or known_url(url) is None or not isinstance(series, dict) or not series:
        return None
    queries = []
    for name, spec in series.items():
        query = spec.get("query") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not isinstance(query, str):
            return None
        queries.append((name, query))
    return tuple(queries), backend_name(url)


@contextmanager
def prefetched_checks(raw_sources: Sequence[object]) -> Iterator[None]:
    """Where the queries are parsed in a child (``egov-agent run``, at start and at every reload): parse
    these raw sql sources' queries in one child while the caller validates the rest of the configuration;
    each source's validation then takes its answer instead of starting a child of its own.

    One child for every sql source, started as soon as the YAML is read, on the other core: Bắc Giang's
    load went from ~0.7 s (a child per source, one after the other) to ~0.35 s. check-config parses in
    its own process, where a child gained nothing (sqlglot's import and parse take as long as the rest
    of the validation). Whatever is not asked for by the end (a source refused before its queries are
    checked) is killed."""
    jobs = list(dict.fromkeys(job for job in map(raw_job, raw_sources) if job is not None)) if _PARSE_IN_CHILD \
        else []
    started = child.start("agent.sources.sqlcheck", "first_problems", (jobs,), PARSE_TIMEOUT) if jobs else None
    if started is not None:
        _prefetched().update({job: _Share(started, i) for i, job in enumerate(jobs)})
    try:
        yield
    finally:
        for job in jobs:
            _prefetched().pop(job, None)
        if started is not None:
            started.cancel()


class _Share:
    """One job's answer out of the prefetch child's list of answers."""

    def __init__(self, started: child.Started, index: int) -> None:
        self._started = started
        self._index = index

    def result(self) -> object:
        answers = self._started.result()
        if not isinstance(answers, list) or len(answers) <= self._index:
            raise child.ChildFailed("bad_answer", "the check process answered something that is not an answer")
        return answers[self._index]


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
        problem = read_only_problem([(name, series.query) for name, series in self.series.items()], backend)
        if problem is not None:
            raise ValueError(f"series {problem[0]}: {problem[1]}")
        if self.query_timeout is not None and self.query_timeout > self.timeout:
            raise ValueError(f"query_timeout ({self.query_timeout:g}s) is longer than the timeout "
                             f"({self.timeout:g}s)")
        return self


SPEC = SqlSpec
