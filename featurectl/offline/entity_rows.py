"""Entity rows as files the engine reads itself, and the one rule entity rows are parsed by.

A point-in-time join takes its entity rows either as an Arrow table (the SDK's `entity_df`)
or as `EntityFiles`: a parquet or csv file, a glob of them, or a URI the cluster sees
(`s3a://`, `hdfs://`, `file:`). The DuckDB engine reads the files on the driver (it runs
there anyway); the Spark engine hands them to `spark.read`, so the driver never holds the
rows (docs/spark.md). Whichever reads them:

- **Order**: the files in the order of their paths (byte order of the path, as `sorted`
  orders them), each file's rows in file order; duplicates kept.
- **Columns**: the first file's columns, as Arrow types: a parquet file's own schema; a csv
  file's types as pyarrow infers them from its first block, join keys of string and bytes
  entities kept as text. Every file must have those columns.
- **Keys and the timestamp** are parsed by `VALUE_RULE`, below, each engine rendering it in
  its own expressions; a value it refuses is an `EntityRowsError` naming the column, the
  count, the file and the row (`bad_values`).
"""
from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from featurectl.core.errors import UsageError
from featurectl.offline.base import EntityRowsError

URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # s3a://, hdfs://, gs://, file:... (not C:\ paths)
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
CSV_BLOCK_BYTES = 1 << 20  # pyarrow's default block: the rows its type inference looks at
_MAGIC = re.compile(r"[*?[]")


@dataclass(frozen=True)
class EntityFiles:
    """Entity rows in files (module docstring). `paths`: local files in row order, or the one
    URI as given (the engine lists it); `schema`: the columns (None for a URI: the engine
    reads it); `given`: the path as the user wrote it, for messages."""

    given: str
    paths: tuple[str, ...]
    format: str  # "parquet" or "csv"
    schema: pa.Schema | None = None
    text_columns: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str] | None:
        return None if self.schema is None else list(self.schema.names)


def entity_files(given: str | Path, text_columns: Iterable[str] = ()) -> EntityFiles:
    """The files `given` names (a file, a glob, or a URI), checked: exit 2 when the name is not
    .parquet/.pq/.csv or no local file matches."""
    text = str(given)
    suffix = Path(text.rstrip("/")).suffix.lower()
    if suffix not in _FORMATS:
        raise UsageError(f"entity file {text} must be .parquet or .csv",
                         hint="pass --entities PATH to a .parquet or .csv file (or a glob of them, e.g. 'rows/*.parquet')")
    fmt, texts = _FORMATS[suffix], tuple(sorted(text_columns))
    if URI.match(text):
        return EntityFiles(text, (text,), fmt, None, texts)
    pattern = str(Path(text).expanduser().absolute())
    paths = sorted(p for p in glob.glob(pattern, recursive=True) if Path(p).is_file()) if _MAGIC.search(text) \
        else ([pattern] if Path(pattern).is_file() else [])
    if not paths:
        raise UsageError(f"entity file {text} does not exist" if not _MAGIC.search(text)
                         else f"no entity file matches {text}",
                         hint="pass --entities PATH to a .parquet or .csv file (or a glob of them)")
    return EntityFiles(text, tuple(paths), fmt, _first_schema(paths[0], fmt, texts), texts)


def _first_schema(path: str, fmt: str, text_columns: tuple[str, ...]) -> pa.Schema:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq
            return pq.read_schema(path).remove_metadata()
        return csv_schema(path, text_columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UsageError(f"cannot read entity file {path}: {exc}") from None


def csv_schema(source: Any, text_columns: Iterable[str]) -> pa.Schema:
    """The column types of a csv file (a path, or the bytes of its start as a file object), as
    pyarrow infers them from its first block (CSV_BLOCK_BYTES): the types of csv entity rows,
    whichever engine then reads the text."""
    import pyarrow.csv as pcsv
    with pcsv.open_csv(source, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                       convert_options=_csv_options(text_columns)) as reader:
        return reader.schema


def _csv_options(text_columns: Iterable[str]) -> Any:
    """pyarrow's CSV conversion, `text_columns` kept as text (type inference would read a string
    key such as '007' as the number 7, which matches nothing)."""
    import pyarrow.csv as pcsv
    return pcsv.ConvertOptions(column_types={column: pa.string() for column in text_columns})


def csv_nulls() -> list[str]:
    """The texts that mean null in a csv column of another type than string: pyarrow's own list
    ('', 'NA', 'null', ...); a string column keeps every text as it is."""
    import pyarrow.csv as pcsv
    return list(pcsv.ConvertOptions().null_values)


def from_csv_text(column: Any, field: pa.Field) -> Any:
    """A csv column read as text (nulls marked as `csv_nulls` says) in the type `field` gives it:
    the one conversion of csv entity columns, whichever engine read the text."""
    if pa.types.is_string(field.type):
        return pc.fill_null(column, "")
    try:
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise EntityRowsError(f"column '{field.name}' does not read as {field.type}, the type pyarrow gives it "
                              f"from the first rows of the first file: {exc}") from None


def read_entity_files(files: EntityFiles) -> tuple[pa.Table, Callable[[int], str]]:
    """The rows of local entity files in one table (on the driver: the DuckDB engine's way), and
    where its row i is ("row 3 of file /x/b.csv"). A csv file comes as text (nulls marked as
    `csv_nulls` says), for the rule to judge keys and times before `as_given` converts it."""
    if files.schema is None:
        raise UsageError(f"entity file {files.given}: a URI is read by the Spark engine only",
                         hint="use a local path, or offline_store type spark")
    tables, starts = [], []
    done = 0
    for path in files.paths:
        try:
            if files.format == "parquet":
                import pyarrow.parquet as pq
                # ParquetFile, not read_table, whose dataset layer imports pandas (~0.3 s of a process).
                table = pq.ParquetFile(path).read()
            else:
                import pyarrow.csv as pcsv
                table = pcsv.read_csv(path, convert_options=_csv_options(files.schema.names))
            if table.schema.names != files.schema.names:
                raise UsageError(f"entity file {path} has columns {', '.join(table.schema.names)} where "
                                 f"{files.paths[0]} has {', '.join(files.schema.names)}",
                                 hint="give every entity file the same columns")
            if files.format == "parquet":
                table = table.cast(files.schema)
            else:
                nulls = pa.array(csv_nulls(), pa.string())
                table = pa.table([c if pa.types.is_string(f.type) else
                                  pc.if_else(pc.is_in(c, nulls), pa.scalar(None, pa.string()), c)
                                  for c, f in zip(table.columns, files.schema)], names=files.schema.names)
        except (pa.ArrowInvalid, OSError, NotImplementedError) as exc:
            raise UsageError(f"cannot read entity file {path}: {exc}") from None
        tables.append(table)
        starts.append(done)
        done += table.num_rows
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    def where(row: int) -> str:
        if len(files.paths) == 1:
            return row_number(row)
        index = max(i for i, start in enumerate(starts) if start <= row)
        return row_number(row - starts[index], files.paths[index])
    return table, where


def as_given(table: pa.Table, files: EntityFiles) -> pa.Table:
    """The table `read_entity_files` read, in the files' own types (csv text converted)."""
    if files.format != "csv" or files.schema is None:
        return table
    return pa.table([from_csv_text(c, f) for c, f in zip(table.columns, files.schema)], schema=files.schema)


def row_number(row: int, path: str | None = None) -> str:
    """Where entity row `row` (0-based) is, in messages: "row 3", or "row 3 of file /x/b.csv"."""
    return f"row {row + 1}" + (f" of file {path}" if path else "")


# -- the rule --------------------------------------------------------------------------------

# How a join key or the timestamp of an entity row is parsed, whichever engine joins: the value
# is cast to the entity's dtype (the timestamp to an instant, no zone meaning UTC), and a
# non-null value is refused when
#   "cast":   the cast fails ('abc' for an int64 key, '2026-13-45', 'yesterday');
#   "whole":  the target is an integer, the column is not, and the value is not a whole number
#             in range (1.5 would become entity 1 or 2: another entity's values);
#   "finite": the target is the timestamp and the value is +-infinity.
# A null key or timestamp is no error: it matches nothing. Each engine renders the names.
VALUE_RULE = ("cast", "whole", "finite")


def checks(target: str, integer_column: bool) -> tuple[str, ...]:
    """The parts of VALUE_RULE that apply to a column cast to `target` (a featurectl dtype, or
    "timestamp" for the entity rows' time); `integer_column`: the column already holds integers."""
    if target == "timestamp":
        return ("cast", "finite")
    if target in ("int32", "int64") and not integer_column:
        return ("cast", "whole")
    return ("cast",)


def bad_values(column: str, is_timestamp: bool, dtype: str, count: int, where: str, sample: dict) -> EntityRowsError:
    """The refusal of entity rows whose `column` holds `count` values VALUE_RULE refuses, the
    first at `where` ("row 3", or "row 3 of file x.csv"), `sample` its row."""
    what = "timestamp (ISO 8601)" if is_timestamp else f"{dtype} join key"
    shown = json.dumps(sample, default=str, ensure_ascii=False)
    return EntityRowsError(
        f"column '{column}' holds {count:,} value(s) that are not a valid {what}; first at {where}: {shown}",
        hint=f"fix those rows of column '{column}' (timestamps like 2026-11-02T08:00:00, "
             "no zone meaning UTC; keys of the entity's dtype)")
