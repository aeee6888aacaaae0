"""Secret references (``env:NAME``, ``file:/path``) resolved when the configuration is loaded.

The configuration never holds a secret itself, so it can live in git; the resolved value is
wrapped in :class:`SecretValue`, whose ``repr`` and ``str`` hide it, so a stray log line or error
message cannot print it.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import core_schema

HIDDEN = "***"
# Off while validating a configuration for a task that needs no secret (generating rules, checking a
# file on a workstation): references are then checked for form only and resolve to nothing.
RESOLVE_SECRETS: contextvars.ContextVar[bool] = contextvars.ContextVar("resolve_secrets", default=True)


class SecretValue:
    __slots__ = ("_reference", "_value")

    def __init__(self, value: str, reference: str) -> None:
        self._value = value
        self._reference = reference

    def reveal(self) -> str:
        return self._value

    @property
    def reference(self) -> str:
        """Where the secret comes from (``env:SNMP_COMMUNITY``): safe to show."""
        return self._reference

    def __repr__(self) -> str:
        return f"SecretValue({self._reference!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            resolve,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda s: s.reference),
        )


def resolve(reference: object) -> SecretValue:
    if isinstance(reference, SecretValue):
        return reference
    if not isinstance(reference, str):
        raise ValueError("must be a secret reference: env:NAME or file:/path")
    kind, _, name = reference.partition(":")
    if kind in ("env", "file") and name and not RESOLVE_SECRETS.get():
        return SecretValue("", reference)
    if kind == "env" and name:
        value = os.environ.get(name)
        if value is None:
            raise ValueError(f"environment variable {name} is not set")
        return SecretValue(value, reference)
    if kind == "file" and name:
        try:
            value = Path(name).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"cannot read secret file {name}: {exc.strerror or exc}") from None
        return SecretValue(value, reference)
    # Never echo the value: it may be a secret written in the clear by mistake.
    raise ValueError("must be a secret reference (env:NAME or file:/path), not a literal value")


Secret = SecretValue


def find_secrets(value: object) -> list[SecretValue]:
    """Every resolved secret in a model (nested models, lists and mappings included): what to redact."""
    found: list[SecretValue] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, SecretValue):
            if item.reveal():
                found.append(item)
        elif isinstance(item, BaseModel):
            stack.extend(getattr(item, name) for name in type(item).model_fields)
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


def redact(text: str, secrets: Iterable[SecretValue]) -> str:
    """Belt and braces for library and device messages quoted in errors and logs: no resolved secret survives.

    Values shorter than 3 characters are left: replacing them would mangle every word and hide next to nothing.
    """
    for secret in sorted(secrets, key=lambda s: -len(s.reveal())):  # the longest first: one may contain another
        value = secret.reveal()
        if len(value) >= 3:
            text = text.replace(value, HIDDEN)
    return text
