"""Debian tools the tests run as real peers; missing is a failure, not a skip (scripts/test installs them)."""

from __future__ import annotations

import shutil

import pytest


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's prometheus package (scripts/test does)")
    return path
