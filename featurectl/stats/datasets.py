"""The datasets `drift` and `profile` read, as DuckDB relations.

A dataset is one or more tables: a Parquet or CSV file, a directory of Parquet files (one
table), a `serve --log-features` directory (DIR/<view>/*.parquet, one table per view, each
feature next to its `<feature>__status`), or Arrow tables handed over by the offline store
for a `window:`. Features are found by name, `view__feature`, or in the view's own table.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from featurectl.core.errors import UsageError
from featurectl.core.sql import ident, literal

STATUS_SUFFIX = "__status"
PRESENT = "PRESENT"
LOG_COLUMNS = ("request_time", "request_id")
_NUMERIC_TYPES = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|"
                            r"UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$")
_CATEGORICAL_TYPES = re.compile(r"^(VARCHAR|BOOLEAN|ENUM.*)$")
_names = itertools.count()  # registered Arrow tables of one connection need distinct names


def kind_of_sql_type(sql_type: str) -> str | None:
    """numeric / categorical / None (not compared) for a DuckDB column type."""
    if _NUMERIC_TYPES.match(sql_type):
        return "numeric"
    if _CATEGORICAL_TYPES.match(sql_type):
        return "categorical"
    return None


@dataclass(frozen=True, eq=False)  # one object per relation: hashed by identity
class Table:
    """One relation of a dataset: `sql` can follow FROM."""

    label: str
    sql: str
    columns: dict[str, str]  # name -> DuckDB type
    view: str | None = None  # set for a per-view table (a feature log, a window)
    rows: int = 0


@dataclass(frozen=True)
class Column:
    """Where one feature's values are, and the SQL that yields them (nulls for absent values)."""

    table: Table
    name: str

    @property
    def sql_type(self) -> str:
        return self.table.columns[self.name]

    def raw(self) -> str:
        status = self.name + STATUS_SUFFIX
        if status in self.table.columns:  # a feature log: only PRESENT values are values
            return f"CASE WHEN {ident(status)} = {literal(PRESENT)} THEN {ident(self.name)} END"
        return ident(self.name)

    def numeric(self) -> str:
        value = f"CAST({self.raw()} AS DOUBLE)"
        return f"CASE WHEN isnan({value}) THEN NULL ELSE {value} END"

    def categorical(self) -> str:
        return f"CAST({self.raw()} AS VARCHAR)"


@dataclass
class Dataset:
    label: str  # e.g. "reference 'train.parquet'"
    tables: list[Table] = field(default_factory=list)

    def locate(self, view: str | None, feature: str) -> Column:
        """The column of `view:feature` (or of a bare column name when view is None)."""
        names = [feature] if view is None else [feature, f"{view}__{feature}"]
        for table in self.tables:
            if table.view is not None and view is not None and table.view != view:
                continue
            for name in names:
                if name in table.columns:
                    return Column(table, name)
        shown = f"{view}:{feature}" if view else feature
        looked = " or ".join(f"'{n}'" for n in names)
        present = sorted({c for t in self.tables for c in t.columns if not c.endswith(STATUS_SUFFIX)})
        raise UsageError(f"{self.label} has no column {looked} for feature {shown}",
                         hint=f"columns present: {', '.join(present) or 'none'}; pass --features with "
                              "the features both datasets hold")

    def candidates(self) -> list[tuple[str | None, str]]:
        """Every comparable column, when --features is not given: (view, column)."""
        found = []
        for table in self.tables:
            for name, sql_type in table.columns.items():
                if name.endswith(STATUS_SUFFIX) or (table.view and name in LOG_COLUMNS):
                    continue
                if kind_of_sql_type(sql_type):
                    found.append((table.view, name))
        return found


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory engine for one drift or profile run."""
    return duckdb.connect(":memory:")


def open_path(conn: duckdb.DuckDBPyConnection, text: str, role: str) -> Dataset:
    path = Path(text)
    label = f"{role} '{text}'"
    if not path.exists():
        raise UsageError(f"{label}: no such file or directory",
                         hint="give a .parquet or .csv file, a directory of Parquet files, or window:START/END")
    if path.is_dir():
        return _open_directory(conn, path, label)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        sql = f"read_parquet({literal(str(path))})"
    elif suffix == ".csv":
        sql = f"read_csv({literal(str(path))}, header = true)"
    else:
        raise UsageError(f"{label}: unknown file type '{path.suffix}'",
                         hint="give a .parquet or .csv file (or, as --reference, a .profile.json)")
    return Dataset(label, [_table(conn, label, sql)])


def _open_directory(conn: duckdb.DuckDBPyConnection, path: Path, label: str) -> Dataset:
    if any(path.glob("*.parquet")):
        sql = f"read_parquet({literal(str(path / '*.parquet'))}, union_by_name = true)"
        return Dataset(label, [_table(conn, label, sql)])
    views = sorted(d for d in path.iterdir() if d.is_dir() and any(d.glob("*.parquet")))
    if not views:
        raise UsageError(f"{label}: the directory holds no Parquet files",
                         hint="give a directory of .parquet files, or a serve --log-features directory "
                              "(DIR/<view>/*.parquet)")
    tables = []
    for view_dir in views:
        sql = f"read_parquet({literal(str(view_dir / '*.parquet'))}, union_by_name = true)"
        tables.append(_table(conn, f"{label} (view {view_dir.name})", sql, view=view_dir.name))
    return Dataset(label, tables)


def from_arrow(conn: duckdb.DuckDBPyConnection, label: str, parts: list[tuple[str, pa.Table]]) -> Dataset:
    """A window read by the offline store: one Arrow table per view."""
    tables = []
    for view, table in parts:
        name = f"__window_{next(_names)}"
        conn.register(name, table)
        tables.append(_table(conn, f"{label} (view {view})", name, view=view))
    return Dataset(label, tables)


def _table(conn: duckdb.DuckDBPyConnection, label: str, sql: str, view: str | None = None) -> Table:
    try:
        columns = {row[0]: row[1] for row in conn.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()}
        rows = conn.execute(f"SELECT count(*) FROM {sql}").fetchall()[0][0]
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{label}: cannot read it: {first}",
                         hint="check that it is a valid Parquet or CSV file") from None
    if not rows:
        raise UsageError(f"{label} is empty (0 rows)",
                         hint="give data with at least one row (for a window: a START/END that holds rows)")
    return Table(label, sql, columns, view, rows)
