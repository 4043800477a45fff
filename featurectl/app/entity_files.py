"""Entity-row files for get-historical: parquet or csv, by extension."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from featurectl.core.errors import UsageError


def read_entity_rows(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise UsageError(f"entity file {path} does not exist", hint="pass --entities PATH to a .parquet or .csv file")
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq
            return pq.read_table(path)
        if suffix == ".csv":
            import pyarrow.csv as pcsv
            return pcsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UsageError(f"cannot read entity file {path}: {exc}") from None
    raise UsageError(f"entity file {path} must be .parquet or .csv")
