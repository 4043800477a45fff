"""A table as plain data: what a command shows in columns, before any console draws it."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableView:
    """Header names and rows of plain text cells (never markup); `wrap` names the columns
    that may wrap on a narrow terminal (all others are kept whole)."""

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    wrap: frozenset[str] = frozenset()
    boxed: bool = False
