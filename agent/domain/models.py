"""Value types every configuration model builds on: strict models, shares, durations, numbers, identifiers.

A leaf: it imports nothing of the project, so the configuration, the collectors and the sources all build
on it without importing one another.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

IDENT = r"^[a-z][a-z0-9_-]*$"


# One set object for each distinct combination of fields given. pydantic keeps on every instance the set of
# the fields its input named (0.2-0.7 KiB each), and a configuration's thousands of targets, params and
# units name the same few combinations. Safe to share: the models are frozen, so pydantic never adds to
# an instance's set, and model_copy copies it before it adds the updated fields.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _shared_fields_set(fields: set[str]) -> set[str]:
    return _FIELDS_SETS.setdefault(frozenset(fields), fields)


class StrictModel(BaseModel):
    """Base for every configuration model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        object.__setattr__(self, "__pydantic_fields_set__", _shared_fields_set(self.__pydantic_fields_set__))

    def __setstate__(self, state: dict[Any, Any]) -> None:  # a worker's configuration, unpickled
        super().__setstate__(state)
        object.__setattr__(self, "__pydantic_fields_set__", _shared_fields_set(self.__pydantic_fields_set__))


def parse_share(value: Any) -> float:
    """A share of a whole, written as the README says percentages are written (``50%``) or as ``0.5``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a share such as 50% or 0.5, got {value!r}")
    if isinstance(value, int | float):
        share = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            share = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"expected a share such as 50% or 0.5, got {value!r}") from None
    else:
        raise ValueError(f"expected a share such as 50% or 0.5, got {value!r}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"expected a share between 0% and 100%, got {value!r}")
    return share


# Shares (loss, jitter, thresholds): 0..1, also written as percentages.
Share = Annotated[float, BeforeValidator(parse_share)]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or 1d, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30s, 5m or 1d, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


def _parse_number(value: Any) -> float:
    """Numbers as the plans write them: ``90%`` is the ratio 0.9, ``95`` is 95."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number or a percentage, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            pass
    raise ValueError(f"expected a number or a percentage such as 90%, got {value!r}")


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Number = Annotated[float, BeforeValidator(_parse_number)]
Ident = Annotated[str, Field(pattern=IDENT, max_length=80)]
Regex = Annotated[str, AfterValidator(_check_regex)]  # a regular expression Python compiles
