"""Whether a sql source's query only reads: parsed with sqlglot in the database's dialect.

Apart from agent.sources.sqlspec, and importing nothing of the agent, so that ``egov-agent run`` can
do it in a short-lived child process (agent.sources.child) and sqlglot (~7 MiB) never stays in the
long-running agent; check-config does it in its own process. Same function, same messages.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

# sqlglot's dialect for each SQLAlchemy backend (others are parsed as generic SQL).
DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite", "mssql": "tsql",
            "oracle": "oracle"}
# Anything in a query's tree that writes, locks, or is not a plain query.
WRITES: tuple[type, ...] = (exp.DML, exp.DDL, exp.Merge, exp.Into, exp.Lock, exp.Command, exp.Set,
                                            exp.Copy, exp.Transaction, exp.Commit, exp.Grant, exp.Pragma, exp.Use,
                                            exp.TruncateTable, exp.Alter)


def first_problem(queries: list[tuple[str, str]], backend: str) -> tuple[str, str] | None:
    """(series, why) for the first of the (series, query) pairs that is not a single read-only SELECT."""
    for name, query in queries:
        try:
            check_read_only_select(query, backend)
        except ValueError as exc:
            return name, str(exc)
    return None


def first_problems(jobs: list[tuple[tuple[tuple[str, str], ...], str]]) -> list[tuple[str, str] | None]:
    """:func:`first_problem` of each (queries, backend): every sql source of a configuration in one child."""
    return [first_problem(list(queries), backend) for queries, backend in jobs]


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
