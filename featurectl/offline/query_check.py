"""The `query:` source check, on DuckDB's own parser. Imports duckdb alone (no pyarrow), so
`validate` can run it and stay light; and only when a query is checked, so the offline store
that imports this module loads no DuckDB for a push Arrow proves valid (offline/pushed.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurectl.offline.lazy import lazy_module

if TYPE_CHECKING:
    import duckdb
else:
    duckdb = lazy_module("duckdb")

from featurectl.core.errors import DefinitionError, Problem
from featurectl.core.model import QuerySource


def query_problem(query: str) -> str | None:
    """Why a `query:` source is refused, or None: it must be exactly one read-only SELECT (WITH
    included) statement, judged by DuckDB's own parser. `SELECT ...; COPY (...) TO 'file'`
    would otherwise write files during materialize."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        return f"it is not valid DuckDB SQL: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}"
    if len(statements) != 1:
        return f"it holds {len(statements)} statements; a query source is exactly one SELECT or WITH statement"
    if statements[0].type != duckdb.StatementType.SELECT:
        return f"it is a {statements[0].type.name} statement; a query source may only read: one SELECT or WITH"
    return None


def check_query_sources(defs: Any, origins: dict | None = None) -> None:
    """Refuse (exit 2) every query source that is not one read-only SELECT/WITH statement."""
    problems = []
    for source in defs.sources.values():
        problem = query_problem(source.query) if isinstance(source, QuerySource) else None
        if problem:
            problems.append(Problem(f"query source refused: {problem}", file=(origins or {}).get(("source", source.name)),
                                    kind="source", name=source.name, field="query",
                                    hint="write one SELECT (or WITH ... SELECT) that reads the source rows"))
    if problems:
        raise DefinitionError(problems)
