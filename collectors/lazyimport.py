"""Importing a library without the optional packages it would pull in and the agent never calls.

pysnmp imports its MIB compiler (pysmi, with jinja2 and requests) and openpyxl imports numpy and Pillow
whenever they are installed; the agent reads numeric OIDs and cell values only. Masking them while the
library loads keeps a checkout's venv (which has them for the tests) as lean as a production install.
A process that already holds a masked package keeps it.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def import_without(module: str, optional: tuple[str, ...]) -> ModuleType:
    masked = [name for name in optional if name not in sys.modules]
    for name in masked:
        sys.modules[name] = None  # type: ignore[assignment]  # import fails: the library goes without
    try:
        return importlib.import_module(module)
    finally:
        for name in masked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
