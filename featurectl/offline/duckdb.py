"""The DuckDB offline store: point-in-time joins, latest rows per entity and window validation.

The store starts one in-memory DuckDB on first use; every operation opens its own connection
to it (a cursor), so a streamed result never shares a connection with another query, and the
connection lives exactly as long as its stream.
Sources are normalised once (`_Source.sql`): keys cast to the entity dtypes, event and created
times as TIMESTAMPTZ in a UTC session, so naive and zoned timestamps compare as UTC. Feature
values are cast to their declared dtypes only on the rows that come out.
"""
from __future__ import annotations

import glob
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

if TYPE_CHECKING:
    import duckdb
else:  # imported at the first statement: a push that Arrow proves valid runs none (pushed.py)
    from featurectl.offline.lazy import lazy_module
    duckdb = lazy_module("duckdb")
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurectl.core.dtypes import element_type
from featurectl.core.errors import UsageError
from featurectl.core.model import FileSource, Source
from featurectl.core.naming import check_output_names, output_name
from featurectl.core.sql import ident, literal
from featurectl.core.times import as_utc
from featurectl.offline.config import DuckdbOfflineConfig
from featurectl.offline.entity_rows import (EntityFiles, as_given, bad_values, checks, read_entity_files,
                                            row_number)
from featurectl.offline.pushed import proven_latest
from featurectl.offline.query_check import check_query_sources, query_problem
from featurectl.offline.base import (PUSHED_ROWS, InvalidSourceData, OfflineStoreError, SourceDataError,
                                     ValidationReport, ViewRequest, require_columns)

_SQL_TYPES = {
    "bool": "BOOLEAN", "int32": "INTEGER", "int64": "BIGINT", "float32": "FLOAT",
    "float64": "DOUBLE", "string": "VARCHAR", "bytes": "BLOB", "timestamp": "TIMESTAMPTZ",
}
SAMPLE_LIMIT = 5
_SQL_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                 "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
# Prefixes the error() a point-in-time join raises on a value that does not fit its dtype.
_INVALID_MARK = "featurectl-invalid-value: "
# Arrow from a DB-API result (`execute(...).to_arrow_table()`), which DuckDB warns copies the
# rows: for pushed rows the copy is cheaper than a relation's second planning (`_counted_latest`).
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning,
                        module=__name__)


def sql_type(dtype: str) -> str:
    """DuckDB type of a featurectl dtype; list<T> becomes T[]."""
    elem = element_type(dtype)
    return f"{_SQL_TYPES[elem]}[]" if elem else _SQL_TYPES[dtype]


def _uncastable(raw: str, dtype: str, source_type: str | None) -> str | None:
    """SQL condition: the non-null source value `raw` is no value of `dtype` (2^40 for an int32).
    None when the column already has the declared type, so it cannot hold such a value."""
    if source_type == sql_type(dtype):
        return None
    return f"{raw} IS NOT NULL AND TRY_CAST({raw} AS {sql_type(dtype)}) IS NULL"


def _inexact(raw: str, dtype: str, source_type: str | None) -> str | None:
    """SQL condition: casting `raw` to an integer dtype would round it (784.7 -> 785)."""
    if (element_type(dtype) or dtype) not in ("int32", "int64"):
        return None
    if source_type == sql_type(dtype) or (source_type or "").removesuffix("[]") in _SQL_INTEGERS:
        return None
    exact = "DOUBLE[]" if element_type(dtype) else "DOUBLE"
    return (f"{raw} IS NOT NULL AND TRY_CAST({raw} AS {sql_type(dtype)})::{exact} "
            f"IS DISTINCT FROM TRY_CAST({raw} AS {exact})")


def invalid_value(raw: str, dtype: str, source_type: str | None) -> str | None:
    """Either condition above: a source value that does not fit `dtype` exactly (SPEC §7)."""
    conds = [c for c in (_uncastable(raw, dtype, source_type), _inexact(raw, dtype, source_type)) if c]
    return " OR ".join(f"({c})" for c in conds) or None


class _Source:
    """One view's source as a DuckDB subquery, with its columns checked against the view.

    Exposes the normalised relation `sql`: join keys cast to the entity dtypes (named by
    join key), `__ts` and `__cr` as TIMESTAMPTZ (UTC), and the raw feature columns.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, root: Path, request: ViewRequest,
                 pushed: pa.Table | None = None):
        """`pushed`: the rows of a push (registered as PUSHED_ROWS), whose column types are
        known without asking DuckDB."""
        self.request = request
        self.source = request.source
        self.keys = [e.join_key for e in request.entities]
        self.pushed = pushed is not None
        self.raw = self._raw_sql(root)
        self.types = _pushed_types(pushed) if pushed is not None else self._columns(conn)
        present = list(self.types)
        src = self.source
        require_columns(request, present, self.describe())
        created = (f"CAST({ident(src.created_timestamp_field)} AS TIMESTAMPTZ)"
                   if src.created_timestamp_field else "NULL::TIMESTAMPTZ")
        cols = [f"CAST({ident(e.join_key)} AS {sql_type(e.dtype)}) AS {ident(e.join_key)}"
                for e in request.entities]
        cols += [f"CAST({ident(src.timestamp_field)} AS TIMESTAMPTZ) AS __ts", f"{created} AS __cr"]
        cols += [f"{ident(f)} AS {ident('__v_' + f)}" for f in request.features]
        self.sql = f"(SELECT {', '.join(cols)} FROM {self.raw})"
        # A parquet source names each row by its file and position (DuckDB's virtual columns),
        # unless the data has columns of those names: `sql_with_row_id` adds it as `__rid`.
        self.sql_with_row_id: str | None = None
        if self.raw.startswith("read_parquet(") and not {"file_index", "file_row_number"} & set(present):
            rid = "(CAST(file_index AS BIGINT) << 40) + file_row_number AS __rid"
            self.sql_with_row_id = f"(SELECT {', '.join(cols)}, {rid} FROM {self.raw})"

    def describe(self) -> str:
        where = (f"path '{self.source.path}'" if isinstance(self.source, FileSource)
                 else f"query {self.source.query!r}")
        return f"source '{self.source.name}' ({where}) of view '{self.request.view.name}'"

    def _raw_sql(self, root: Path) -> str:
        src: Source = self.source
        if not isinstance(src, FileSource):
            # Never run a query that could write. Pushed rows are read by rows_source's own
            # query: parsing it again would cost each push a statement on DuckDB's default
            # connection (a third database in a server worker).
            problem = None if self.pushed else query_problem(src.query)
            if problem:
                raise SourceDataError(f"{self.describe()}: query source refused: {problem}")
            return f"({src.query.strip().rstrip(';')})"
        pattern = str(root / src.path)
        if not glob.glob(pattern, recursive=True):
            raise SourceDataError(
                f"{self.describe()}: no file matches {pattern}. Create the file, or fix 'path' "
                f"in the source definition (it is relative to the repository root)")
        if src.path.lower().endswith(".csv"):
            return f"read_csv({literal(pattern)}, header = true, union_by_name = true)"
        return f"read_parquet({literal(pattern)}, union_by_name = true)"

    def _columns(self, conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """Column name -> DuckDB type of the raw source."""
        try:
            return {row[0]: row[1] for row in conn.execute(f"DESCRIBE SELECT * FROM {self.raw}").fetchall()}
        except duckdb.Error as exc:
            raise SourceDataError(f"cannot read {self.describe()}: {_first_line(exc)}. "
                                    f"Check that the data is readable and the query is valid DuckDB SQL") from None

    def feature(self, name: str, prefix: str = "", checked: bool = False) -> str:
        """The feature column (under `prefix`, e.g. a struct's name) cast to its declared dtype;
        a value that does not fit it exactly stops the query (SPEC §7: never altered silently).
        `checked`: the same rows are counted for such values, on this connection (an Arrow table
        cannot change under it), just before or in the same statement (`_counted_latest`), and
        rows with any are refused, so the plain cast is enough (~2 ms less to plan)."""
        dtype = self.request.feature(name).dtype
        raw = f"{prefix}{ident('__v_' + name)}"
        cast = f"CAST({raw} AS {sql_type(dtype)})"
        invalid = invalid_value(raw, dtype, self.types.get(name))
        if invalid is None or checked:
            return cast
        what = (f"{_INVALID_MARK}view '{self.request.view.name}' feature '{name}' ({dtype}): the value "
                f"{{}} in {self.describe()} does not fit {dtype} exactly")
        head, tail = (literal(part) for part in what.split("{}"))
        return f"CASE WHEN {invalid} THEN error({head} || CAST({raw} AS VARCHAR) || {tail}) ELSE {cast} END"


def _check_entity_rows(conn: duckdb.DuckDBPyConnection, rows: pa.Table, types: dict[str, str],
                       timestamp_column: str, where: Callable[[int], str] = row_number) -> None:
    """Refuse entity rows whose join keys or timestamps break the shared rule
    (`entity_rows.VALUE_RULE`: `abc` for an int64 key, `2026-13-45`, `yesterday`), before the
    join would fail on them in DuckDB; `where` names a row (its file, for entity files)."""
    described = dict(conn.execute("SELECT column_name, column_type FROM (DESCRIBE __entity)").fetchall())
    dtypes = {v: k for k, v in _SQL_TYPES.items()}
    for column, target in types.items():
        if described.get(column) == target:
            continue
        raw, typed = ident(column), f"TRY_CAST({ident(column)} AS {target})"
        integer = described.get(column, "").removesuffix("[]") in _SQL_INTEGERS
        rendered = {"cast": f"{typed} IS NULL", "finite": f"isinf({typed})",
                    "whole": f"{typed}::DOUBLE IS DISTINCT FROM TRY_CAST({raw} AS DOUBLE)"}
        rule = checks("timestamp" if column == "__et" else dtypes.get(target, target), integer)
        bad = f"{raw} IS NOT NULL AND ({' OR '.join(rendered[check] for check in rule)})"
        # fetchall, not fetchone: a result left open would block the next conn.sql()
        count, first = conn.execute(f"SELECT count(*), min(__row) FROM __entity WHERE {bad}").fetchall()[0]
        if count:
            raise bad_values(timestamp_column if column == "__et" else column, column == "__et",
                             dtypes.get(target, target), count, where(first), rows.slice(first, 1).to_pylist()[0])


def _row_numbers(n: int) -> pa.Array:
    """0..n-1 without a Python loop (pa.array(range(n)) takes ~0.3 s per million), wrapping
    numpy's buffer: pa.repeat and pa.array probe for pandas, importing it (~0.3 s)."""
    return pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(np.arange(n, dtype=np.int64))])


def check_entity_columns(columns: list[str], keys: list[str], timestamp_column: str) -> None:
    """Entity rows must hold every join key and the timestamp column (exit 2 naming it)."""
    for column in [*keys, timestamp_column]:
        if column not in columns:
            raise UsageError(
                f"the entity rows have no column '{column}' "
                f"({'timestamp column' if column == timestamp_column else 'join key'}); "
                f"columns present: {', '.join(columns)}",
                hint="add the column, or pass --timestamp-column NAME for the timestamp")


def _register_entity_rows(conn: duckdb.DuckDBPyConnection, entity_rows: pa.Table, requests: list[ViewRequest],
                          timestamp_column: str, where: Callable[[int], str] = row_number) -> None:
    """Register the narrow entity rows as `__entity` (keys, `__et`, `__row`) and refuse rows
    whose keys or timestamps do not parse."""
    keys = _entity_keys(requests)
    narrow = pa.table({**{k: entity_rows.column(k) for k in keys},
                       "__et": entity_rows.column(timestamp_column),
                       "__row": _row_numbers(entity_rows.num_rows)})
    conn.register("__entity", narrow)
    _check_entity_rows(conn, entity_rows, {**_entity_key_types(requests), "__et": "TIMESTAMPTZ"},
                       timestamp_column, where)


def typed_entity_rows(entity_rows: pa.Table, requests: list[ViewRequest], timestamp_column: str) -> pa.Table:
    """The narrow entity rows as another engine takes them: each join key cast to its entity
    dtype, the timestamp as `__et` (timestamp[us, UTC]; no zone meaning UTC) and the row number
    `__row`, refused (EntityRowsError) exactly where the DuckDB join refuses them. Parsing
    keys and timestamps is one rule, whichever engine joins."""
    check_entity_columns(entity_rows.column_names, _entity_keys(requests), timestamp_column)
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("SET TimeZone = 'UTC'")
        _register_entity_rows(conn, entity_rows, requests, timestamp_column)
        types = _entity_key_types(requests)
        cols = [f"CAST({ident(k)} AS {types[k]}) AS {ident(k)}" for k in _entity_keys(requests)]
        return conn.sql(f"SELECT {', '.join(cols)}, CAST(__et AS TIMESTAMPTZ) AS __et, __row "
                        f"FROM __entity").to_arrow_table()
    except duckdb.Error as exc:
        raise _join_error(exc, requests) from None
    finally:
        conn.close()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# memory_limit when offline_store sets none: DuckDB's own default is 80% of RAM, which a 1M x 10M
# point-in-time join fills to 1.3 GB of RSS; with 1GB the process still peaked at 1.0-1.08 GB
# (the entity rows and the result beside DuckDB's share), with 768MB at 0.92 GB and as fast
# (docs/benchmarks.md). Larger joins spill to the temp directory instead of growing.
DEFAULT_MEMORY_LIMIT = "768MB"


class DuckDBOfflineStore:
    def __init__(self, root: Path, config: DuckdbOfflineConfig):
        self.root = Path(root).resolve()
        self.config = config
        # The store's database, and the one that checks pushed rows (see `_database`).
        self._dbs: dict[bool, duckdb.DuckDBPyConnection] = {}
        self._db_lock = threading.Lock()
        self._starting: threading.Thread | None = None  # `start`'s thread, until the database is taken
        self._started: list[duckdb.DuckDBPyConnection | OfflineStoreError] = []

    @classmethod
    def from_config(cls, config: DuckdbOfflineConfig, root: Path) -> "DuckDBOfflineStore":
        return cls(root, config)

    def close(self) -> None:
        """Close the store's databases; streams already returned keep their own connection."""
        with self._db_lock:
            try:
                self._take_started()
            except OfflineStoreError:
                pass  # it never started: nothing of it to close
            for db in self._dbs.values():
                db.close()
            self._dbs.clear()

    def start(self) -> None:
        """Start the store's database on a thread and return at once: DuckDB starts (20-40 ms)
        without holding the GIL, so the caller reads its inputs meanwhile (get-historical: the
        entity file and the registry); the first operation takes the database, or its error."""
        with self._db_lock:
            if self._starting is None and False not in self._dbs:
                self._starting = threading.Thread(target=self._start, daemon=True, name="featurectl-duckdb-start")
                self._starting.start()

    def _start(self) -> None:
        try:
            self._started.append(self._open())
        except OfflineStoreError as exc:
            self._started.append(exc)

    def _take_started(self) -> None:
        """Under the lock: wait for `start`'s thread; keep its database, or raise its error."""
        if self._starting is None:
            return
        self._starting.join()
        self._starting = None
        started = self._started.pop() if self._started else None  # None: the thread died; start anew
        if isinstance(started, OfflineStoreError):
            raise started
        if started is not None:
            self._dbs[False] = started

    def _database(self, pushed: bool = False) -> duckdb.DuckDBPyConnection:
        """A cursor on the store's in-memory DuckDB, started on first use (or by `start`)."""
        with self._db_lock:
            self._take_started()
            if pushed not in self._dbs:
                self._dbs[pushed] = self._open(pushed)
            return self._dbs[pushed].cursor()

    def _open(self, pushed: bool = False) -> duckdb.DuckDBPyConnection:
        """A new in-memory DuckDB (~20-40 ms). Pushed rows (`pushed`) are checked on a database of
        their own with one thread: a push's statements run on a thousand rows in memory, where
        waking DuckDB's other threads costs more CPU than they save (~2 ms of ~9 per 1,000-row
        push, docs/benchmarks.md); the settings are otherwise the same."""
        # Spill to the system temp dir, not a `.tmp` folder in whatever directory the user is in.
        settings: dict[str, str | bool | int | float | list[str]] = {
            "file_search_path": str(self.root), "temp_directory": str(Path(tempfile.gettempdir()) / "featurectl-duckdb"),
            "memory_limit": self.config.memory_limit or DEFAULT_MEMORY_LIMIT}
        if pushed:
            settings["threads"] = 1
        elif self.config.threads:
            settings["threads"] = self.config.threads
        try:
            db = duckdb.connect(":memory:", config=settings)
            # For every connection to it (TimeZone needs ICU, loaded once the database runs):
            # one statement per database instead of one per operation.
            db.execute("SET GLOBAL TimeZone = 'UTC'")
            return db
        except duckdb.Error as exc:
            raise OfflineStoreError(f"cannot start DuckDB with offline_store settings {settings}: "
                                    f"{_first_line(exc)}. Fix offline_store in featurectl.yaml") from None

    def _connect(self, rows: pa.Table | None = None) -> duckdb.DuckDBPyConnection:
        """A connection of the operation's own (a cursor: its temp tables, registrations and
        stream are its alone), on the store's database."""
        if rows is None:
            return self._database()
        conn = self._database(pushed=True)
        conn.register(PUSHED_ROWS, rows)  # a push: these rows are the source (see `rows_source`)
        return conn

    def check_sources(self, defs: Any, origins: dict | None = None) -> None:
        """Refuse (exit 2) sources this engine would not run: a query that is not one SELECT."""
        check_query_sources(defs, origins)

    # -- point-in-time join ---------------------------------------------------------------

    def get_historical_features(self, entity_rows: pa.Table | EntityFiles, requests: list[ViewRequest], *,
                                timestamp_column: str = "event_timestamp",
                                full_feature_names: bool = False) -> pa.RecordBatchReader:
        # Entity files are read here, on the driver, where DuckDB runs anyway.
        files = entity_rows if isinstance(entity_rows, EntityFiles) else None
        rows, where = read_entity_files(files) if files else (cast(pa.Table, entity_rows), row_number)
        names = _output_names(rows.column_names, requests, full_feature_names)
        keys = _entity_keys(requests)
        check_entity_columns(rows.column_names, keys, timestamp_column)
        conn = self._connect()
        with _closed_on_error(conn, requests):
            sources = [_Source(conn, self.root, r) for r in requests]
            _register_entity_rows(conn, rows, requests, timestamp_column, where)
            matches, fetch = _pit_sql(keys, _entity_key_types(requests), sources)
            conn.execute(matches)
            reader = conn.sql(fetch).to_arrow_reader(100_000)
            table = (as_given(rows, files) if files else rows).replace_schema_metadata(None)
        features = list(reader.schema)[1:]  # the first column is __row
        schema = pa.schema([*table.schema, *(f.with_name(n) for f, n in zip(features, names))])
        return pa.RecordBatchReader.from_batches(
            schema, _zip_rows(table, reader, schema, conn, requests))

    # -- materialization ------------------------------------------------------------------

    def latest_rows(self, request: ViewRequest, start: datetime, end: datetime,
                    batch_size: int = 100_000, rows: pa.Table | None = None) -> pa.RecordBatchReader:
        conn = self._connect(rows)
        with _closed_on_error(conn, [request]):
            src = _Source(conn, self.root, request, rows)
            reader = conn.sql(_latest_sql(src), params=_window_params(start, end)).to_arrow_reader(batch_size)
        return pa.RecordBatchReader.from_batches(reader.schema, _guarded(reader, conn, [request]))

    def source_rows(self, request: ViewRequest, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> pa.RecordBatchReader:
        conn = self._connect()
        with _closed_on_error(conn, [request]):
            src = _Source(conn, self.root, request)
            features = ", ".join(f"{src.feature(f)} AS {ident(f)}" for f in request.features)
            sql = (f"SELECT __ts AS event_timestamp, {features} FROM {src.sql} "
                   f"WHERE __ts >= CAST($start AS TIMESTAMPTZ) AND __ts < CAST($end AS TIMESTAMPTZ)")
            reader = conn.sql(sql, params={"start": as_utc(start).isoformat(), "end": as_utc(end).isoformat()}
                              ).to_arrow_reader(batch_size)
        return pa.RecordBatchReader.from_batches(reader.schema, _guarded(reader, conn, [request]))

    def newest_event_time(self, request: ViewRequest) -> datetime | None:
        conn = self._connect()
        try:
            src = _Source(conn, self.root, request)
            return conn.execute(f"SELECT max(__ts) FROM {src.sql}").fetchall()[0][0]
        except duckdb.Error as exc:
            raise _join_error(exc, [request]) from None
        finally:
            conn.close()

    def validate_window(self, request: ViewRequest, start: datetime, end: datetime,
                        rows: pa.Table | None = None) -> ValidationReport:
        if rows is not None:
            # Pushed rows that Arrow compute proves valid need no statement (~4-5 ms of a push);
            # any other rows are checked, and a refusal reported, below (offline/pushed.py).
            proven = proven_latest(request, rows, start, end)
            if proven is not None:
                return ValidationReport(view=request.view.name, rows_checked=rows.num_rows, latest=proven)
        conn = self._connect(rows)
        latest: pa.Table | None = None
        try:
            src = _Source(conn, self.root, request, rows)
            checks = _checks(request, src.types)
            params = _window_params(start, end)
            window = f"(SELECT * FROM {src.sql} WHERE {_WINDOW})"
            counts = ", ".join(f"count(*) FILTER (WHERE {cond})" for _, cond, _ in checks)
            query = f"SELECT count(*){', ' + counts if counts else ''} FROM {window}"
            at_once = None if rows is None else _counted_latest(conn, request, src, window, checks, params)
            if at_once is not None:
                row, latest = at_once
            else:
                counted = conn.execute(query, params).fetchall()[0] if rows is None else \
                    _pushed_counts(conn, request, src, query, params)
                if isinstance(counted, ValidationReport):
                    return counted
                row = counted
            violations = {label: n for (label, _, _), n in zip(checks, row[1:]) if n}
            failing = [c for c in checks if c[0] in violations]
            samples = _samples(conn, src, window, params, failing) if failing else []
            if violations:
                latest = None  # selected beside the counts: rows of a refused push are not written
            elif rows is not None and latest is None:
                # The same connection and registration: a push pays one setup, not two.
                latest = conn.sql(_latest_sql(src, checked=True), params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise _join_error(exc, [request]) from None
        finally:
            conn.close()
        return ValidationReport(view=request.view.name, rows_checked=row[0],
                                violations=violations, samples=samples, latest=latest)


# -- pushed rows --------------------------------------------------------------------------

# Arrow types as DuckDB scans them, for the types a push's columns take (push._arrow): known
# without a DESCRIBE. Any other type is named as Arrow names it, which equals no DuckDB type,
# so its columns get every cast check.
_ARROW_SQL = {"int64": "BIGINT", "int32": "INTEGER", "double": "DOUBLE", "float": "FLOAT", "bool": "BOOLEAN",
              "string": "VARCHAR", "large_string": "VARCHAR"}


def _arrow_sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        elem = _ARROW_SQL.get(str(arrow_type.value_type))
        return f"{elem}[]" if elem else str(arrow_type)
    return _ARROW_SQL.get(str(arrow_type), str(arrow_type))


def _pushed_types(rows: pa.Table) -> dict[str, str]:
    return {f.name: _arrow_sql_type(f.type) for f in rows.schema}


_COUNTS = "__featurectl_counts"


def _counted_latest(conn: duckdb.DuckDBPyConnection, request: ViewRequest, src: _Source, window: str,
                    checks: list[tuple[str, str, str]], params: dict) -> tuple[tuple, pa.Table] | None:
    """Pushed rows in one statement (each costs ~1 ms to plan and start, whatever its rows):
    the latest row per entity, and beside each the window's counts, exactly the `query` of
    `validate_window`, plus the raw rows whose key or times are missing or do not parse. The
    plain casts of the latest rows are safe there: a value that does not fit stops the
    statement, one that would be rounded is counted in the same statement, which refuses the
    rows. None when that statement cannot answer alone (it stopped, a raw row is bad, or no row
    has a key): the caller then counts the same rules in statements of their own."""
    raw = " OR ".join(f"({cond})" for _, cond, _ in _raw_checks(request))
    counts = ", ".join(["count(*)", *(f"count(*) FILTER (WHERE {cond})" for _, cond, _ in checks),
                        f"(SELECT count(*) FROM {PUSHED_ROWS} WHERE {raw})"])
    also = f"(SELECT [{counts}] FROM {window}) AS {_COUNTS}"
    try:
        # execute, not sql: a relation plans its statement twice (bind, then run). The Arrow
        # copy of a DB-API result that DuckDB warns about costs less (1,000 rows: ~2 ms less).
        table = conn.execute(_latest_sql(src, checked=True, also=also), params).to_arrow_table()
    except duckdb.Error:
        return None
    if table is None or not table.num_rows:
        return None
    row = tuple(table.column(_COUNTS)[0].as_py())
    if row[-1]:
        return None
    return row[:-1], table.drop_columns([_COUNTS])


def _pushed_counts(conn: duckdb.DuckDBPyConnection, request: ViewRequest, src: _Source, query: str,
                   params: dict) -> tuple | ValidationReport:
    """The window's counts for pushed rows and, in the same statement, the rows whose key or
    times are missing or do not parse. Those (or a normalising cast that stops the statement on
    them) are reported by `_raw_row_report` instead, which costs its queries only then."""
    raw = " OR ".join(f"({cond})" for _, cond, _ in _raw_checks(request))
    try:
        # execute, not sql: a relation plans its statement twice (bind, then run), ~2 ms here.
        row = conn.execute(f"SELECT *, (SELECT count(*) FROM {PUSHED_ROWS} WHERE {raw}) FROM ({query})",
                           params).fetchall()[0]
    except duckdb.Error:
        row = None
    if row is None or row[-1]:
        report = _raw_row_report(conn, request)
        if report is not None:
            return report
        if row is None:  # not the keys or times: the error is the query's own, raised again
            return conn.execute(query, params).fetchall()[0]
    return row[:-1]


def _raw_checks(request: ViewRequest) -> list[tuple[str, str, str]]:
    """(label, condition, column) on the raw pushed rows: a key or timestamp that is missing or
    does not parse (a file source drops rows without a key)."""
    src = request.source
    checks = [(f"{e.join_key}: missing or not a valid {e.dtype}",
               f"TRY_CAST({ident(e.join_key)} AS {sql_type(e.dtype)}) IS NULL", ident(e.join_key))
              for e in request.entities]
    for column in filter(None, (src.timestamp_field, src.created_timestamp_field)):
        missing = "" if column == src.created_timestamp_field else f"{ident(column)} IS NULL OR "
        checks.append((f"{column}: missing or not an ISO 8601 timestamp",
                       f"{missing}({ident(column)} IS NOT NULL AND TRY_CAST({ident(column)} AS TIMESTAMPTZ) IS NULL)",
                       ident(column)))
    return checks


def _raw_row_report(conn: duckdb.DuckDBPyConnection, request: ViewRequest) -> ValidationReport | None:
    """Pushed rows come from JSON: a key or timestamp that does not parse would stop the
    normalising casts, so these are reported alone."""
    checks = _raw_checks(request)
    counts = ", ".join(f"count(*) FILTER (WHERE {cond})" for _, cond, _ in checks)
    row = conn.execute(f"SELECT count(*), {counts} FROM {PUSHED_ROWS}").fetchall()[0]
    violations = {label: n for (label, _, _), n in zip(checks, row[1:]) if n}
    if not violations:
        return None
    samples = []
    for label, cond, raw in checks:
        if label in violations:
            found = conn.execute(f"SELECT CAST({raw} AS VARCHAR) AS value FROM {PUSHED_ROWS} WHERE {cond} "
                                 f"LIMIT {SAMPLE_LIMIT}").fetchall()
            samples += [{"violation": label, "value": value} for (value,) in found]
    return ValidationReport(view=request.view.name, rows_checked=row[0], violations=violations,
                            samples=samples[:SAMPLE_LIMIT])


# -- SQL builders -------------------------------------------------------------------------


def _entity_keys(requests: list[ViewRequest]) -> list[str]:
    keys: list[str] = []
    for request in requests:
        keys += [e.join_key for e in request.entities if e.join_key not in keys]
    return keys


def _entity_key_types(requests: list[ViewRequest]) -> dict[str, str]:
    return {e.join_key: sql_type(e.dtype) for r in requests for e in r.entities}


def _output_names(columns: list[str], requests: list[ViewRequest], full: bool) -> list[str]:
    """Feature output columns in request order, checked against each other and the entity rows."""
    names = [(r.view.name, f, output_name(r.view.name, f, full)) for r in requests for f in r.features]
    check_output_names(names, columns, full)
    return [out for _, _, out in names]


def _pit_sql(keys: list[str], key_types: dict[str, str], sources: list[_Source]) -> tuple[str, str]:
    """Entity rows ASOF-joined to each source on (keys, event time) alone, then each matched
    (keys, time) fetches its source row, the greatest created time winning.

    Measured on 1M entity rows x 10M source rows: carrying the feature columns through the
    ASOF sort, or breaking ties with an aggregate over structs, cost 2-4x more CPU than this
    narrow ASOF plus a semi-join of candidates. Returns two statements: the first stores the
    matches in table __m, so the second is planned knowing their size (as one query, with __m
    a CTE, it took ~1.8x the CPU and more memory). Rows come out ordered by `__row`; a row
    repeats only on a full tie (same keys, event and created time), which the caller drops.
    """
    entity_cols = [f"CAST({ident(k)} AS {key_types[k]}) AS {ident(k)}" for k in keys]
    ctes = [f"__e AS (SELECT __row, {', '.join(entity_cols)}, CAST(__et AS TIMESTAMPTZ) AS __et "
            f"FROM __entity)"]
    matched = ["__e.__row", *(f"__e.{ident(k)}" for k in keys)]
    joins = []
    for i, src in enumerate(sources):
        on = " AND ".join(f"__e.{ident(k)} = s{i}.{ident(k)}" for k in src.keys)
        at = f"s{i}.__ts"
        if src.request.view.ttl:  # a row exactly ttl old still counts
            at = f"CASE WHEN {at} >= __e.__et - to_seconds({int(src.request.view.ttl)}) THEN {at} END"
        matched.append(f"{at} AS __m{i}")
        joins.append(f"ASOF LEFT JOIN (SELECT {_keys(src)}, __ts FROM {src.sql}) s{i} "
                     f"ON {on} AND __e.__et >= s{i}.__ts")
    matches = (f"CREATE TEMP TABLE __m AS WITH {', '.join(ctes)} "
               f"SELECT {', '.join(matched)} FROM __e {' '.join(joins)}")
    ctes, selects, final_joins = [], ["__m.__row"], []
    for i, src in enumerate(sources):
        ctes += [
            f"__c{i} AS (SELECT * FROM {src.sql} s SEMI JOIN (SELECT DISTINCT {_keys(src)}, __m{i} AS __ts "
            f"FROM __m WHERE __m{i} IS NOT NULL) m ON {_on(src, 's', 'm')} AND s.__ts = m.__ts)",
            f"__t{i} AS (SELECT {_keys(src)}, __ts, max(__cr) AS __cr FROM __c{i} GROUP BY ALL)",
            f"__w{i} AS (SELECT * FROM __c{i} c SEMI JOIN __t{i} t ON {_on(src, 'c', 't')} "
            f"AND c.__ts = t.__ts AND c.__cr IS NOT DISTINCT FROM t.__cr)",
        ]
        final_joins.append(f"LEFT JOIN __w{i} w{i} ON {_on(src, '__m', f'w{i}')} AND w{i}.__ts = __m.__m{i}")
        selects += [f"{src.feature(f, f'w{i}.')} AS __f{i}_{j}" for j, f in enumerate(src.request.features)]
    return matches, (f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM __m "
                     f"{' '.join(final_joins)} ORDER BY __m.__row")


def _keys(src: _Source) -> str:
    return ", ".join(ident(k) for k in src.keys)


def _on(src: _Source, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{ident(k)} = {right}.{ident(k)}" for k in src.keys)


# Which row is latest: the greatest event time, then the greatest created time (a missing
# created time losing), as one HUGEINT so a plain max() ranks rows: max() of a struct was
# several times slower.
_RANK = ("epoch_us(__ts)::HUGEINT * 18446744073709551616 "
         "+ coalesce(epoch_us(__cr)::HUGEINT + 9223372036854775808, 0)")


_WINDOW = "__ts >= CAST($start AS TIMESTAMPTZ) AND __ts < CAST($end AS TIMESTAMPTZ)"


def _window_params(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": as_utc(start).isoformat(), "end": as_utc(end).isoformat()}


def _latest_sql(src: _Source, checked: bool = False, also: str = "") -> str:
    """Per entity, its latest row of the window ($start, $end) (see `latest_rows`); `checked`
    as in `_Source.feature`; `also`: one more output column, for pushed rows only."""
    request, keys = src.request, _keys(src)
    window = f"FROM {src.sql} WHERE {_WINDOW} AND " + " AND ".join(f"{ident(k)} IS NOT NULL" for k in src.keys)
    features = ", ".join(f"{src.feature(f, checked=checked)} AS {ident(f)}" for f in request.features)
    if src.pushed:
        # Rows handed in are few and in memory: one window over them plans and runs in about
        # two thirds of the CPU of the two steps below (1,000 rows: ~8 ms against ~12-16 ms).
        extra = f", {also}" if also else ""
        return (f"SELECT {keys}, __ts AS event_timestamp, {features}{extra} {window} "
                f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {_RANK} DESC) = 1")
    if src.sql_with_row_id is not None:
        # Per key, the position of its latest row, ranked on narrow columns; then one
        # scan fetches exactly those rows (a semi-join on one BIGINT, which streams).
        # On 1M rows / 100k keys this takes about half the CPU of DuckDB's own
        # arg_max of the whole row (docs/benchmarks.md, the latest-row floor).
        window = window.replace(f"FROM {src.sql}", f"FROM {src.sql_with_row_id}", 1)
        return (f"WITH __top AS (SELECT arg_max(__rid, {_RANK}) AS __rid {window} GROUP BY {keys}) "
                f"SELECT {keys}, __ts AS event_timestamp, {features} FROM {src.sql_with_row_id} s "
                f"SEMI JOIN __top t ON s.__rid = t.__rid")
    # Rank per key first on narrow columns, then fetch the winners: one window
    # function over all the wide rows cost about twice the CPU on 10M rows.
    return (f"WITH __top AS (SELECT {keys}, max({_RANK}) AS __rank {window} GROUP BY {keys}) "
            f"SELECT {keys}, __ts AS event_timestamp, {features} FROM (SELECT *, {_RANK} AS __rank "
            f"{window}) s SEMI JOIN __top t ON {_on(src, 's', 't')} AND s.__rank = t.__rank "
            f"QUALIFY row_number() OVER (PARTITION BY {keys}) = 1")


def _checks(request: ViewRequest, source_types: dict[str, str]) -> list[tuple[str, str, str]]:
    """(label, SQL condition on the window, column) for every rule a feature declares. A column
    whose stored type already is the declared one cannot hold an invalid value: no cast check
    (on typed parquet that makes a view without constraints a plain count)."""
    checks = []
    for name in request.features:
        feature = request.feature(name)
        raw = ident("__v_" + name)
        typed = f"TRY_CAST({raw} AS {sql_type(feature.dtype)})"
        is_list = element_type(feature.dtype) is not None
        uncastable = _uncastable(raw, feature.dtype, source_types.get(name))
        if uncastable is not None:
            checks.append((f"{name}: not a valid {feature.dtype}", uncastable, raw))
        inexact = _inexact(raw, feature.dtype, source_types.get(name))
        if inexact is not None:
            checks.append((f"{name}: not a whole number, would be rounded to fit {feature.dtype}", inexact, raw))
        if not feature.nullable:
            checks.append((f"{name}: null in a non-nullable feature", f"{raw} IS NULL", raw))
        c = feature.constraints
        if c is None:
            continue
        low, high = (f"list_min({typed})", f"list_max({typed})") if is_list else (typed, typed)
        if c.min is not None:
            checks.append((f"{name}: below min {c.min:g}", f"{low} < {float(c.min)!r}", raw))
        if c.max is not None:
            checks.append((f"{name}: above max {c.max:g}", f"{high} > {float(c.max)!r}", raw))
        if c.allowed is not None:
            elem = sql_type(element_type(feature.dtype) or feature.dtype)
            allowed = "[" + ", ".join(f"TRY_CAST({literal(str(v))} AS {elem})" for v in c.allowed) + "]"
            cond = (f"len(list_filter({typed}, lambda x: x IS NOT NULL AND NOT list_contains({allowed}, x))) > 0"
                    if is_list else f"{typed} IS NOT NULL AND NOT list_contains({allowed}, {typed})")
            checks.append((f"{name}: not in allowed values", cond, raw))
    return checks


def _samples(conn: duckdb.DuckDBPyConnection, src: _Source, window: str, params: dict,
             failing: list[tuple[str, str, str]]) -> list[dict]:
    """Up to SAMPLE_LIMIT offending rows, taken round-robin so every failing rule shows."""
    keys = ", ".join(ident(k) for k in src.keys)
    parts = [f"(SELECT {i} AS __i, {keys}, __ts AS event_timestamp, {literal(label)} AS violation, "
             f"CAST({raw} AS VARCHAR) AS value FROM {window} WHERE {cond} LIMIT {SAMPLE_LIMIT})"
             for i, (label, cond, raw) in enumerate(failing)]
    return pick_samples(conn.sql(" UNION ALL ".join(parts), params=params).to_arrow_table().to_pylist())


def pick_samples(rows: list[dict]) -> list[dict]:
    """Up to SAMPLE_LIMIT of the offending rows (each tagged `__i`, its rule's index), taken
    round-robin over the rules so that every failing rule shows."""
    per_rule: dict[int, list[dict]] = {}
    for row in rows:
        per_rule.setdefault(row.pop("__i"), []).append(row)
    picked: list[dict] = []
    for depth in range(SAMPLE_LIMIT):
        picked += [group[depth] for _, group in sorted(per_rule.items()) if depth < len(group)]
    return picked[:SAMPLE_LIMIT]


# -- streaming ----------------------------------------------------------------------------


def _join_error(exc: Exception, requests: list[ViewRequest]) -> OfflineStoreError:
    text = _first_line(exc)
    if _INVALID_MARK in text:
        return InvalidSourceData(text.split(_INVALID_MARK, 1)[1] + ". Nothing was written. Fix the source "
                                 "data, or declare the feature with a dtype that holds the value")
    views = ", ".join(f"'{r.view.name}' (source '{r.source.name}')" for r in requests)
    return OfflineStoreError(
        f"DuckDB failed on view(s) {views}: {_first_line(exc)}. Check that every source column "
        f"holds values of its feature's declared dtype, that join-key columns (in the sources and "
        f"the entity rows) hold the entity dtypes, and that timestamps are timestamps")


@contextmanager
def _closed_on_error(conn: duckdb.DuckDBPyConnection, requests: list[ViewRequest]) -> Iterator[None]:
    """Close the connection if setting up a stream fails; a DuckDB error becomes ours."""
    try:
        yield
    except duckdb.Error as exc:
        conn.close()
        raise _join_error(exc, requests) from None
    except BaseException:
        conn.close()
        raise


def _guarded(reader: pa.RecordBatchReader, conn: duckdb.DuckDBPyConnection,
             requests: list[ViewRequest]) -> Iterator[pa.RecordBatch]:
    """Yield the reader's batches, keeping its connection open until the stream ends."""
    try:
        yield from reader
    except (duckdb.Error, pa.ArrowException) as exc:
        raise _join_error(exc, requests) from None
    finally:
        conn.close()


def _zip_rows(entity: pa.Table, reader: pa.RecordBatchReader, schema: pa.Schema,
              conn: duckdb.DuckDBPyConnection, requests: list[ViewRequest]) -> Iterator[pa.RecordBatch]:
    """Glue each feature batch (ordered by input row, `__row` first) to the same slice of the
    entity rows, so the caller's columns come back untouched, without a trip through DuckDB.
    A repeated `__row` (a full tie in a source) is dropped: the first one wins."""
    offset, last = 0, -1
    for batch in _guarded(reader, conn, requests):
        rows = batch.column(0)
        if len(rows) and (rows[0].as_py() == last or len(rows) != rows[-1].as_py() - last):
            previous = pa.concat_arrays([pa.array([last], pa.int64()), rows.slice(0, len(rows) - 1)])
            batch = batch.filter(pc.not_equal(rows, previous))
        if not batch.num_rows:
            continue
        last = batch.column(0)[-1].as_py()
        part = entity.slice(offset, batch.num_rows)
        offset += batch.num_rows
        columns = [*part.columns, *(pa.chunked_array([c]) for c in batch.columns[1:])]
        yield from pa.Table.from_arrays(columns, schema=schema).to_batches()
    if offset != entity.num_rows:
        raise OfflineStoreError(f"internal error: the join returned {offset} rows for "
                                f"{entity.num_rows} entity rows")
