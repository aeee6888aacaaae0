"""Reading a configuration's raw data before it is validated, tolerating every wrong shape.

The cross-checks and the error reports read the YAML as it came, so that reference errors are listed in
the same run as schema errors: a value of the wrong shape reads as missing here, and the schema reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def value_at(data: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path``, or None where the raw data has no such key (a missing ``params:``)."""
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def mappings(value: Any) -> list[tuple[int, dict[str, Any]]]:
    """(index, item) of each mapping in a list; nothing when the value is not a list."""
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def as_mapping(value: Any) -> dict[str, Any]:
    """The raw value when it is a mapping, else an empty one: the schema reports the wrong shape."""
    return value if isinstance(value, dict) else {}
