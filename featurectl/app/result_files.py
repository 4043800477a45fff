"""Result files (get-historical --output): a stream of record batches written as parquet or csv.

Here rather than in an offline adapter: any front door (CLI, SDK user, server) writes results
the same way, whichever engine produced the stream.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from featurectl.core.errors import UsageError


def write_table(reader: pa.RecordBatchReader, path: Path) -> int:
    """Write a stream to .parquet or .csv batch by batch; return the number of rows written.

    Writes to a temporary name first so a failed run leaves no half-written file behind.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise UsageError(f"cannot write {path}: unknown file type '{path.suffix}'",
                         hint="name the output file .parquet or .csv")
    nested = [f.name for f in reader.schema if pa.types.is_nested(f.type)]
    if suffix == ".csv" and nested:
        raise UsageError(f"cannot write {path}: CSV cannot hold the list column(s) {', '.join(nested)}",
                         hint="write to a .parquet file instead")
    partial = path.with_name(path.name + ".partial")
    rows = 0
    try:
        if suffix == ".csv":
            writer = pa_csv.CSVWriter(partial, reader.schema)
        else:
            writer = pq.ParquetWriter(partial, reader.schema)
        with writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}",
                         hint="check that the directory exists and is writable") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return rows
