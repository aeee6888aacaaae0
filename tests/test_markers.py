"""The kinds table (tests/support/markers.py) names every test module and only tests that exist, so that
``-m unit`` leaves nothing out by a typo and a new module cannot go unmarked."""

from __future__ import annotations

import ast
from pathlib import Path

from support.markers import ALL, TABLE

TESTS = Path(__file__).resolve().parent


def functions_of(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")}


def test_every_test_module_has_its_kind() -> None:
    modules = {p.name for p in TESTS.glob("test_*.py")}
    assert sorted(modules - TABLE.keys()) == [], "test modules missing from tests/support/markers.py"
    assert sorted(TABLE.keys() - modules) == [], "tests/support/markers.py names modules that are gone"


def test_the_tests_named_apart_exist() -> None:
    stale = []
    for module, kinds in TABLE.items():
        named = set(kinds.others) | (set() if kinds.root == ALL else set(kinds.root))
        stale += [f"{module}::{name}" for name in sorted(named - functions_of(TESTS / module))]
    assert stale == [], "tests/support/markers.py names tests that are gone"
