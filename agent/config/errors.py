"""pydantic's validation errors as located problems: the file, line and key an operator can fix.

pydantic reports a location inside the data (``("kpis", 3, "measure", "kind")``) and a message for a
developer; the province's operator needs ``bac-giang.yml:412: kpis[3].measure: unknown kind 'uptime'``.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    ValidationError,
)
from pydantic_core import ErrorDetails

from agent.config.yamlsource import Document, Path_, Problem, format_path
from agent.domain.rawdata import value_at

_SHOW_INPUT = {"date_from_datetime_parsing", "date_parsing", "date_type", "datetime_parsing",
               "int_parsing", "float_parsing", "int_type", "float_type", "bool_parsing", "literal_error",
               "string_pattern_mismatch", "enum"}


def _message(error: ErrorDetails) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind.startswith("date"):
        return f"expected a date (YYYY-MM-DD), got {value!r}"
    if kind in ("int_parsing", "float_parsing", "int_type", "float_type"):
        return f"expected a number, got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"expected lower-case letters, digits, '_' or '-', got {value!r}"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"unknown kind {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    message = error["msg"].removeprefix("Value error, ")
    if kind in _SHOW_INPUT and value is not None:
        message += f", got {value!r}"
    return message


def _real_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """Drop the tagged-union discriminators pydantic inserts into ``loc`` (they are not keys)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if (isinstance(node, dict) and part in node) or in_list:
            node = node[part]
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and node.get("kind") == part:
            continue
        else:
            out.append(part)
            node = None
    return tuple(out)


def problems_from(exc: ValidationError, doc: Document, prefix: Path_ = ()) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path = _real_path(value_at(doc.data, prefix), error["loc"])
        full = (*prefix, *path)
        file, line = doc.locate(full)
        problems.append(Problem(file, line, format_path(full), _message(error)))
    return problems
