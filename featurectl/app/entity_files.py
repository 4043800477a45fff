"""Entity-row files for get-historical: parquet or csv, by extension; a file, a glob or a URI."""
from __future__ import annotations

from pathlib import Path

from featurectl.core.definitions import Definitions
from featurectl.offline.entity_rows import EntityFiles, entity_files


def text_key_columns(defs: Definitions) -> list[str]:
    """Join keys of string and bytes entities: a CSV must keep them as text."""
    return sorted({e.join_key for e in defs.entities.values() if e.dtype in ("string", "bytes")})


def open_entity_files(given: str | Path, defs: Definitions) -> EntityFiles:
    """The entity files `given` names, checked (exit 2 naming the path), for the offline engine
    to read: CSV columns that are join keys of string and bytes entities stay text (type
    inference would read a string key such as '007' as the number 7, which matches nothing)."""
    return entity_files(given, text_key_columns(defs))
