"""The layering docs/architecture.md promises, checked on the source with `ast`.

Every package imports only what its row of the architecture table allows (the table in the
doc is the one source of truth: this test parses it), and featurectl/core stays pure:
standard library, pydantic and semver only; no I/O, no clock. The architecture says so; this
test is what keeps it true (buf checks its layering the same way).
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import featurectl.core

CORE = Path(featurectl.core.__file__).parent
PACKAGE = CORE.parent
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
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


# ---- the per-package import matrix ------------------------------------------------------

# Imports the table forbids that are still in the tree, each with the stream removing it.
# Remove an entry when its import goes: the test fails on an entry that no longer occurs.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Row:
    """One row of the architecture table: a package (or top-level module) and what it may import."""

    unit: str  # "core", "sdk", "__init__": a featurectl/<unit> directory or featurectl/<unit>.py
    internal: tuple[str, ...]  # featurectl modules, dotted below featurectl ("registry.config")
    libraries: tuple[str, ...]  # top-level names of third-party distributions


def table_rows(markdown: str) -> dict[str, Row]:
    """Rows of the markdown table whose header has 'may import (featurectl)'."""
    lines = markdown.splitlines()
    header = next(i for i, line in enumerate(lines) if "may import (featurectl)" in line)
    rows = {}
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        unit = re.fullmatch(r"`featurectl/([a-z_]+)(?:\.py)?`", cells[0])
        assert unit, f"architecture table: first cell {cells[0]!r} is not `featurectl/<package>`"
        rows[unit.group(1)] = Row(unit.group(1), tuple(re.findall(r"`([a-z_][a-z0-9_.]*)`", cells[2])),
                                  tuple(re.findall(r"`([a-z_][a-z0-9_]*)`", cells[3])))
    return rows


ROWS = table_rows(ARCHITECTURE.read_text())


def unit_of(path: Path) -> str:
    """The table row a source file belongs to: its top directory under featurectl/ or its stem."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_modules(tree: ast.AST, module: str) -> list[tuple[str, int]]:
    """Absolute names of everything a module imports; `from a import b` may name module a.b."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _within(name: str, allowed: str) -> bool:
    return name == allowed or name.startswith(allowed + ".")


def import_allowed(row: Row, name: str) -> bool:
    """`name` is as imported (`from a import b` gives `a.b`, which may be a module or an object in a)."""
    root = name.split(".")[0]
    if root == "__future__" or (root in sys.stdlib_module_names and root != "featurectl"):
        return True
    if root != "featurectl":
        return root in row.libraries
    inner = name.removeprefix("featurectl").lstrip(".")
    candidates = [inner, inner.rsplit(".", 1)[0]] if "." in inner else [inner]
    own = (row.unit,)
    return any(_within(c, a) for c in candidates for a in (*row.internal, *own)) or inner in ("",)


def violations(path: Path) -> list[str]:
    row = ROWS.get(unit_of(path))
    rel = str(path.relative_to(PACKAGE.parent))
    if row is None:
        return [f"{rel}: no row for featurectl/{unit_of(path)} in docs/architecture.md; add one"]
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = []
    for name, line in imported_modules(tree, module):
        if import_allowed(row, name):
            continue
        target = name if name.startswith("featurectl") else name.split(".")[0]
        if any((rel, prefix) in KNOWN_VIOLATIONS for prefix in (name, name.rsplit(".", 1)[0])):
            continue
        bad.append(f"{rel}:{line}: import {target}")
    return bad


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_every_module_imports_only_what_its_row_allows(path: Path):
    problems = violations(path)
    assert problems == [], f"the table in docs/architecture.md forbids: {problems}"


def test_every_known_violation_still_occurs():
    occurring = set()
    for path in SOURCES:
        rel = str(path.relative_to(PACKAGE.parent))
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for name, _ in imported_modules(ast.parse(path.read_text()), module):
            occurring |= {(rel, name), (rel, name.rsplit(".", 1)[0])}
    gone = sorted(set(KNOWN_VIOLATIONS) - occurring)
    assert gone == [], f"fixed, so remove from KNOWN_VIOLATIONS in tests/unit/test_layering.py: {gone}"


def test_the_table_has_a_row_for_every_package_and_the_core_row_matches_the_purity_check():
    present = {unit_of(p) for p in SOURCES}
    assert present - set(ROWS) == set()
    assert set(ROWS["core"].libraries) == ALLOWED_THIRD_PARTY and ROWS["core"].internal == ()


MATRIX = table_rows("""
| package | what | may import (featurectl) | may import (libraries) |
|---|---|---|---|
| `featurectl/app` | x | `core`, `registry.config` | `pyarrow` |
| `featurectl/sdk.py` | x | `app` | — |
""")


@pytest.mark.parametrize("unit, name, allowed", [
    ("app", "featurectl.core.model.Entity", True),
    ("app", "featurectl.app.planning", True),  # its own package
    ("app", "featurectl.registry.config.SqliteRegistryConfig", True),
    ("app", "featurectl.registry.sqlite", False),  # only registry.config is allowed
    ("app", "featurectl.registry", False),
    ("app", "featurectl.render.plan_data", False),
    ("app", "pyarrow.compute", True),
    ("app", "duckdb", False),
    ("app", "json.dumps", True),  # the standard library
    ("sdk", "featurectl.app.retrieval.OnlineReader", True),
    ("sdk", "featurectl.cli", False),
])
def test_the_matrix_checker_itself(unit, name, allowed):
    assert import_allowed(MATRIX[unit], name) is allowed


def test_relative_imports_resolve_against_the_importing_module():
    tree = ast.parse("from . import rules\nfrom ..online import base")
    assert [n for n, _ in imported_modules(tree, "featurectl.core.policy")] == [
        "featurectl.core.rules", "featurectl.online.base"]
