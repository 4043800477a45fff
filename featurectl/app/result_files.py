"""Result files (get-historical --output): a stream of record batches written as parquet or csv.

Here rather than in an offline adapter: any front door (CLI, SDK user, server) writes results
the same way, whichever engine produced the stream.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from featurectl.app.outfiles import check_writable, replacing
from featurectl.core.errors import UsageError

SUFFIXES = (".parquet", ".pq", ".csv")


def check_result_path(path: Path, flag: str = "--output") -> None:
    """Exit 2 before any work when `path` is not a .parquet/.csv file that can be written."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{flag} {path}: unknown file type '{path.suffix}'",
                         hint="name the output file .parquet or .csv")
    check_writable(path, flag)


def write_table(reader: pa.RecordBatchReader, path: Path, flag: str = "--output") -> int:
    """Write a stream to .parquet or .csv batch by batch; return the number of rows written.

    Writes to a temporary name first so a failed run leaves no half-written file behind.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    check_result_path(path, flag)
    nested = [f.name for f in reader.schema if pa.types.is_nested(f.type)]
    if suffix == ".csv" and nested:
        raise UsageError(f"{flag} {path}: CSV cannot hold the list column(s) {', '.join(nested)}",
                         hint="write to a .parquet file instead")
    rows = 0
    with replacing(path, flag) as partial:
        if suffix == ".csv":
            writer = pa_csv.CSVWriter(partial, reader.schema)
        else:
            writer = pq.ParquetWriter(partial, reader.schema)
        with writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    return rows
