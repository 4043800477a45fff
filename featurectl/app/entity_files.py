"""Entity-row files for get-historical: parquet or csv, by extension."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pyarrow as pa

from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError


def text_key_columns(defs: Definitions) -> list[str]:
    """Join keys of string and bytes entities: a CSV must keep them as text."""
    return sorted({e.join_key for e in defs.entities.values() if e.dtype in ("string", "bytes")})


def read_entity_rows(path: Path, text_columns: Iterable[str] = ()) -> pa.Table:
    """The rows of a parquet or csv file. CSV columns named in `text_columns` stay text: type
    inference would read a string key such as '007' as the number 7, which matches nothing."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise UsageError(f"entity file {path} does not exist", hint="pass --entities PATH to a .parquet or .csv file")
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq
            # One file: ParquetFile, not read_table, whose dataset layer imports pandas
            # (~0.3 s of a whole get-historical process).
            return pq.ParquetFile(path).read()
        if suffix == ".csv":
            import pyarrow.csv as pcsv
            types = {column: pa.string() for column in text_columns}
            return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, OSError) as exc:
        raise UsageError(f"cannot read entity file {path}: {exc}") from None
    raise UsageError(f"entity file {path} must be .parquet or .csv")
