"""featurectl/core stays pure: standard library, pydantic and semver only; no I/O, no clock.

The architecture says so; this test is what keeps it true (buf checks its layering the same way).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import featurectl.core

CORE = Path(featurectl.core.__file__).parent
MODULES = sorted(CORE.rglob("*.py"))
ALLOWED_THIRD_PARTY = {"pydantic", "semver"}
# Standard-library modules that are themselves I/O, processes or the network.
FORBIDDEN_STDLIB = {"os", "io", "pathlib", "shutil", "subprocess", "socket", "sqlite3", "urllib", "http",
                    "tempfile", "glob", "importlib", "multiprocessing", "threading", "asyncio"}
FORBIDDEN_CALLS = {"open", "input", "print", "exec", "eval", "__import__"}
CLOCK_ATTRS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter"}


def imported_roots(tree: ast.AST) -> list[tuple[str, int]]:
    roots = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside featurectl.core
                continue
            roots.append((node.module or "", node.lineno))
    return roots


def forbidden_imports(tree: ast.AST) -> list[str]:
    bad = []
    for module, line in imported_roots(tree):
        root = module.split(".")[0]
        if module == "featurectl.core" or module.startswith("featurectl.core."):
            continue
        if root in ALLOWED_THIRD_PARTY or root == "__future__":
            continue
        if root in sys.stdlib_module_names and root not in FORBIDDEN_STDLIB:
            continue
        bad.append(f"line {line}: import {module}")
    return bad


def forbidden_calls(tree: ast.AST) -> list[str]:
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        if isinstance(fn, ast.Name) and fn.id in FORBIDDEN_CALLS:
            bad.append(f"line {node.lineno}: {fn.id}()")
        elif isinstance(fn, ast.Attribute) and fn.attr in CLOCK_ATTRS:
            bad.append(f"line {node.lineno}: .{fn.attr}() reads the clock")
        elif isinstance(fn, ast.Attribute) and fn.attr in {"read_text", "write_text", "read_bytes",
                                                           "write_bytes", "open"}:
            bad.append(f"line {node.lineno}: .{fn.attr}() is file I/O")
    return bad


def test_core_has_modules():
    assert {p.name for p in MODULES} >= {"model.py", "diff.py", "rules.py", "policy.py", "plan.py"}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_core_module_is_pure(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    problems = forbidden_imports(tree) + forbidden_calls(tree)
    assert problems == [], f"{path.relative_to(CORE.parent.parent)} is not pure: {problems}"


@pytest.mark.parametrize("source, expected", [
    ("import duckdb", ["line 1: import duckdb"]),
    ("from featurectl.online import base", ["line 1: import featurectl.online"]),
    ("import os.path", ["line 1: import os.path"]),
    ("from pathlib import Path", ["line 1: import pathlib"]),
    ("import json, re\nfrom pydantic import BaseModel\nimport semver\nfrom featurectl.core.model import X\n"
     "from . import rules", []),
    ("x = open('f')", ["line 1: open()"]),
    ("from datetime import datetime\nt = datetime.now()", ["line 2: .now() reads the clock"]),
    ("import time\nt = time.time()", ["line 2: .time() reads the clock"]),
])
def test_the_checker_itself_catches_violations(source, expected):
    tree = ast.parse(source)
    assert forbidden_imports(tree) + forbidden_calls(tree) == expected
