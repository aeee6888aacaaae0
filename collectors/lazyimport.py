"""Importing a library without the optional packages it would pull in and the agent never calls.

pysnmp imports its MIB compiler (pysmi, with jinja2 and requests), openpyxl imports numpy and Pillow, and
httpx its command-line client (click, rich, pygments: ~2.7 MiB) whenever they are installed; the agent reads
numeric OIDs and cell values only, and never runs httpx's CLI. Masking them while the library loads keeps a
checkout's venv (which has them for the tests and the linters) as lean as a production install. A process
that already holds a masked package keeps it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

# httpx's ``[cli]`` extra: httpx/__init__ imports its CLI (httpx._main) when these are installed.
HTTPX_CLI = ("click", "rich", "pygments")


@contextmanager
def masked(optional: tuple[str, ...]) -> Iterator[None]:
    """While inside, importing any of ``optional`` (not yet loaded) fails, so a library goes without it."""
    names = [name for name in optional if name not in sys.modules]
    for name in names:
        sys.modules[name] = None  # type: ignore[assignment]  # import fails: the library goes without
    try:
        yield
    finally:
        for name in names:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def import_without(module: str, optional: tuple[str, ...]) -> ModuleType:
    with masked(optional):
        return importlib.import_module(module)
