"""Quoting for SQL text the stores build (DuckDB, SQLite, PostgreSQL share the standard rules)."""
from __future__ import annotations


def ident(name: str) -> str:
    """`name` as a quoted SQL identifier: any name, even one with quotes, stays one identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
