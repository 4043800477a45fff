"""The Spark offline store: the DuckDB engine's answers (SPEC §5, §11), computed by Apache Spark.

Point-in-time joins are a union + window per view: the entity rows and the view's source rows
go into one DataFrame, partitioned by the view's join keys (compared as columns, never glued
into one string) and ordered by time, source rows before entity rows at the same time and by
created time among themselves; `last(..., ignorenulls)` over that order hands each entity row
the latest source row at or before its time. One shuffle and one sort per view, no join of
every entity row to every source row of its key (docs/spark.md says why). Latest rows per
entity are a `max_by` aggregate, which Spark combines before the shuffle (as a sort
aggregate: its buffers are not fixed-width; docs/spark.md says why it stays one).

Results come back as Arrow (`DataFrame.toArrow`, or spilled Parquet), never as Python rows.
Entity rows given as a table are checked and typed by the DuckDB engine's code
(`duckdb.typed_entity_rows`) and go in through Arrow; entity files (`entity_rows.EntityFiles`)
are read by Spark itself, checked by the same rule in Spark columns (`_parsed`). One
SparkSession serves the whole process; its time zone is UTC so that naive and zoned timestamps
compare as UTC, as in DuckDB.
"""
from __future__ import annotations

import atexit
import glob
import io
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurectl.core.dtypes import element_type
from featurectl.core.errors import DefinitionError, Problem
from featurectl.core.model import FileSource, QuerySource
from featurectl.core.times import as_utc
from featurectl.offline.base import (EntityRowsError, InvalidSourceData, OfflineStoreError, SourceDataError,
                                     ValidationReport, ViewRequest, require_columns)
from featurectl.offline.config import SparkOfflineConfig
from featurectl.offline.duckdb import (SAMPLE_LIMIT, _output_names, check_entity_columns, pick_samples,
                                       typed_entity_rows)
from featurectl.offline.entity_rows import (CSV_BLOCK_BYTES, EntityFiles, bad_values, csv_nulls, csv_schema,
                                           from_csv_text, row_number)
from featurectl.offline.entity_rows import checks as entity_checks

try:
    from py4j.protocol import Py4JError
    from pyspark import SparkConf, SparkContext
    from pyspark.errors import PySparkException
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import Column, DataFrame, SparkSession, Window
    from pyspark.sql import functions as F
except ImportError as exc:  # the extra is not installed
    raise OfflineStoreError(
        f"offline_store type 'spark' needs pyspark ({exc}). Install it with "
        "`pip install 'featurectl[spark]'` (and a Java 17+ runtime), or set offline_store.type "
        "to duckdb in featurectl.yaml") from None

# pyspark warns on every Arrow conversion that it was not tested with pandas 3; featurectl
# hands it Arrow tables, not pandas frames, so the warning says nothing to a featurectl user.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

_SPARK_TYPES = {
    "bool": "boolean", "int32": "int", "int64": "bigint", "float32": "float",
    "float64": "double", "string": "string", "bytes": "binary", "timestamp": "timestamp",
}
_SPARK_INTEGERS = {"tinyint", "smallint", "int", "bigint"}
# The Arrow types the DuckDB engine hands back, so both engines give the online writers and
# the result files the same schema (DuckDB names a list's element `l`).
_ARROW_TYPES = {
    "bool": pa.bool_(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
    "float64": pa.float64(), "string": pa.string(), "bytes": pa.binary(), "timestamp": pa.timestamp("us", tz="UTC"),
}
_INVALID_MARK = "featurectl-invalid-value: "
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # s3a://, hdfs://, gs://, file:... (not C:\ paths)
# Spark settings featurectl's semantics rest on: times compare in UTC (naive = UTC, as in
# DuckDB), and a cast that fails is an error, not a silent null.
_REQUIRED_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "true"}
_DEFAULT_CONF = {
    "spark.app.name": "featurectl",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",  # no progress bars on the CLI's stderr
    "spark.driver.maxResultSize": "0",  # results of a cluster master come back to the driver (docs/spark.md)
}
_LOCAL_MASTER = re.compile(r"^local(?:\[\s*(\*|\d+)\s*(?:,\s*\d+\s*)?\])?$")
# How a result reaches the caller: "spill" (written by Spark to a temporary Parquet directory
# the driver reads back batch by batch; local masters only, whose executors share the
# driver's disk) or "collect" (`toArrow`, the whole result in driver memory). docs/spark.md
# gives the measurements behind the choice; the benchmark sets it to compare the two.
RESULTS = "spill"
CHUNK_ROWS = 1_000_000  # point-in-time results are spilled and read back this many entity rows at a time

_SESSION_LOCK = threading.Lock()


def spark_type(dtype: str) -> str:
    """Spark SQL type of a featurectl dtype; list<T> becomes array<T>."""
    elem = element_type(dtype)
    return f"array<{_SPARK_TYPES[elem]}>" if elem else _SPARK_TYPES[dtype]


def arrow_type(dtype: str) -> pa.DataType:
    elem = element_type(dtype)
    return pa.list_(pa.field("l", _ARROW_TYPES[elem])) if elem else _ARROW_TYPES[dtype]


def col(name: str) -> Column:
    """A column by its exact name (dots and backticks in it are part of the name)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def spark_session(config: SparkOfflineConfig) -> SparkSession:
    """The process's SparkSession, started on first use from `config` (master and conf);
    later stores in the same process, whatever their config, share it."""
    wrong = {k: v for k, v in config.conf.items() if k in _REQUIRED_CONF and str(v).lower() != _REQUIRED_CONF[k].lower()}
    if wrong:
        raise OfflineStoreError(
            f"offline_store.conf sets {', '.join(f'{k}={v}' for k, v in wrong.items())} in featurectl.yaml; "
            f"featurectl needs {', '.join(f'{k}={_REQUIRED_CONF[k]}' for k in wrong)} (times compare as UTC, "
            "and a failed cast is an error). Remove the setting")
    with _SESSION_LOCK:
        if SparkContext._active_spark_context is None:  # process-wide, unlike the active session
            session = _start_session(config)
        else:  # ours, or one the embedding program started (a notebook): reuse it
            session = SparkSession.builder.getOrCreate()
        for key, value in _REQUIRED_CONF.items():
            session.conf.set(key, value)
        return session


def spark_log_path() -> Path:
    """Where the JVM of this process writes its own output (Spark's log, Java's warnings)."""
    return Path(tempfile.gettempdir()) / f"featurectl-spark-{os.getpid()}.log"


def local_defaults(master: str, conf: dict[str, Any] | None = None) -> dict[str, str]:
    """Settings for a local master that Spark's own defaults get wrong for one machine
    (docs/spark.md gives the measurements): 200 shuffle partitions (each a task, a sort and a
    file) where 2 per core measured fastest; a web UI nobody reads from a CLI process; and the
    parallel (throughput) garbage collector for the one JVM that is driver and executor,
    instead of G1, whose concurrent marking and refinement threads take CPU from the tasks (left
    out when `conf`, Java's environment or a spark-defaults.conf already choose JVM options);
    and a heap sized for the machine (`local_driver_memory`) instead of Spark's 1g (left out
    when Spark's environment or a spark-defaults.conf set it). Not applied to cluster masters:
    their executors run JVMs of their own, sized and tuned for the cluster."""
    match = _LOCAL_MASTER.match(master.strip())
    if not match:
        return {}
    cores = (os.cpu_count() or 1) if match.group(1) == "*" else int(match.group(1) or 1)
    defaults = {"spark.sql.shuffle.partitions": str(2 * max(cores, 1)), "spark.ui.enabled": "false",
                "spark.driver.extraJavaOptions": "-XX:+UseParallelGC", "spark.driver.memory": local_driver_memory()}
    if _jvm_options_chosen_elsewhere(conf or {}):
        del defaults["spark.driver.extraJavaOptions"]
    if _driver_memory_chosen_elsewhere():
        del defaults["spark.driver.memory"]
    return defaults


def local_driver_memory() -> str:
    """The heap of a local master's one JVM, which is the whole engine (driver and executor):
    a quarter of the memory this process may use (the machine's, or its cgroup's limit when
    lower), as the JVM sizes its own default heap, and never below Spark's 1g. Spark's 1g
    made a 10M-row point-in-time join on local[2] 4.3x slower than 3g (96.9 against 22.5 s,
    the heap full and collected again and again; docs/spark.md)."""
    megabytes = _usable_memory_bytes() // 4 // (1 << 20)
    return f"{max(1024, megabytes)}m"


_CGROUP_MEMORY_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")  # v2, v1


def _usable_memory_bytes() -> int:
    try:
        usable = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that reports it
        return 0
    for limit_file in _CGROUP_MEMORY_LIMITS:
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            usable = min(usable, int(text))
    return usable


def _driver_memory_chosen_elsewhere() -> bool:
    """Whether the driver's heap is set where featurectl's --conf would override it: Spark's
    SPARK_DRIVER_MEMORY, a --driver-memory in PYSPARK_SUBMIT_ARGS, or a spark-defaults.conf."""
    if os.environ.get("SPARK_DRIVER_MEMORY") or "--driver-memory" in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        return True
    return _in_spark_defaults(r"spark\.driver\.memory")


_GC_FLAG = re.compile(r"-XX:\+Use\w*GC\b")


def _jvm_options_chosen_elsewhere(conf: dict[str, Any]) -> bool:
    """Whether the driver's JVM options come from somewhere featurectl must not override:
    a collector named in Java's own environment variables or in the user's
    spark.driver.defaultJavaOptions (two collectors stop the JVM from starting), or a
    spark-defaults.conf that sets the driver's Java options (featurectl's setting, passed as
    --conf, would replace the administrator's whole)."""
    named = [os.environ.get(v, "") for v in ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS",
                                              "SPARK_SUBMIT_OPTS")] + [str(conf.get("spark.driver.defaultJavaOptions", ""))]
    if any(_GC_FLAG.search(text) for text in named):
        return True
    return _in_spark_defaults(r"spark\.driver\.(?:extra|default)JavaOptions")


def _in_spark_defaults(key_pattern: str) -> bool:
    """Whether the spark-defaults.conf Spark would read (SPARK_CONF_DIR, or SPARK_HOME/conf)
    sets a key matching `key_pattern`."""
    home = os.environ.get("SPARK_HOME")
    conf_dir = os.environ.get("SPARK_CONF_DIR") or (os.path.join(home, "conf") if home else None)
    if not conf_dir:
        return False
    try:
        text = Path(conf_dir, "spark-defaults.conf").read_text(errors="replace")
    except OSError:
        return False
    return bool(re.search(rf"^\s*{key_pattern}\b", text, re.MULTILINE))


def session_settings(config: SparkOfflineConfig) -> dict[str, str]:
    """What the session starts with: featurectl's defaults, then a local master's, then the
    user's `conf` (which wins over both, key by key: a user's spark.driver.extraJavaOptions
    replaces featurectl's whole), then the settings featurectl insists on (`_REQUIRED_CONF`)."""
    settings = {**_DEFAULT_CONF, **local_defaults(config.master, config.conf), **config.conf, **_REQUIRED_CONF}
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in settings.items()}


def _start_session(config: SparkOfflineConfig) -> SparkSession:
    """Launch the JVM with its stdout and stderr in `spark_log_path()`, so that Spark's log
    and Java's warnings never mix with the command's own output, then start the session."""
    conf = SparkConf().setMaster(config.master).setAll(list(session_settings(config).items()))
    log = spark_log_path()
    try:
        with open(log, "ab") as out:
            gateway = launch_gateway(conf, popen_kwargs={"stdout": out, "stderr": out})
        context = SparkContext(conf=conf, gateway=gateway)
        context.setLogLevel(config.log_level)
        return SparkSession(context)
    except Exception as exc:  # no java, a bad master URL, an unknown conf value
        said = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] \
            if log.exists() else []
        raise OfflineStoreError(
            f"cannot start Spark with master {config.master!r}: {_first_line(exc)}"
            + (f" (the JVM said: {said[-1]}; full output in {log})" if said else "")
            + ". Check that a Java 17+ runtime is installed (`java -version`; `make servers` installs "
            "one) and that offline_store.master and offline_store.conf in featurectl.yaml are right") from None


class _Source:
    """One view's source as a DataFrame, with its columns checked against the view: join keys
    cast to the entity dtypes (named by join key), `__ts` and `__cr` as timestamps (UTC), and
    the raw feature columns as `__v_<feature>`."""

    def __init__(self, spark: SparkSession, root: Path, request: ViewRequest, rows: pa.Table | None = None):
        self.request = request
        self.source = request.source
        self.keys = [e.join_key for e in request.entities]
        try:
            self.raw = spark.createDataFrame(rows) if rows is not None else self._read(spark, root)
            fields = self.raw.schema.fields
        except (PySparkException, Py4JError) as exc:
            raise SourceDataError(f"cannot read {self.describe()}: {_first_line(exc)}. Check that the data is "
                                  "readable and the query is valid Spark SQL") from None
        self.types = {f.name: f.dataType.simpleString() for f in fields}
        present = list(self.types)
        src = self.source
        require_columns(request, present, self.describe())
        created = (col(src.created_timestamp_field).cast("timestamp") if src.created_timestamp_field
                   else F.lit(None).cast("timestamp"))
        self.df = self.raw.select(
            *(col(e.join_key).cast(spark_type(e.dtype)).alias(e.join_key) for e in request.entities),
            col(src.timestamp_field).cast("timestamp").alias("__ts"), created.alias("__cr"),
            *(col(f).alias("__v_" + f) for f in request.features))

    def describe(self) -> str:
        where = (f"path '{self.source.path}'" if isinstance(self.source, FileSource)
                 else f"query {self.source.query!r}")
        return f"source '{self.source.name}' ({where}) of view '{self.request.view.name}'"

    def _read(self, spark: SparkSession, root: Path) -> DataFrame:
        src = self.source
        if not isinstance(src, FileSource):
            query, problem = spark_query(spark, src.query)  # never run a query that could write
            if problem:
                raise SourceDataError(f"{self.describe()}: query source refused: {problem}")
            return spark.sql(query)
        if _URI.match(src.path):  # a cluster path: Spark lists and globs it itself
            paths = [src.path]
        else:
            pattern = str(root / src.path)
            paths = sorted(glob.glob(pattern, recursive=True))
            if not paths:
                raise SourceDataError(
                    f"{self.describe()}: no file matches {pattern}. Create the file, or fix 'path' "
                    f"in the source definition (it is relative to the repository root)")
        if src.path.lower().endswith(".csv"):
            return spark.read.csv(paths, header=True, inferSchema=True)
        # Merging schemas is a Spark job over every footer; one file has one schema, which
        # Spark reads from its footer on the driver.
        merge = len(paths) > 1 or os.path.isdir(paths[0]) or bool(_URI.match(paths[0]))
        return spark.read.option("mergeSchema", str(merge).lower()).parquet(*paths)

    def feature(self, name: str, raw: Column) -> Column:
        """The feature value `raw` cast to its declared dtype; a value that does not fit it
        exactly stops the query (SPEC §7: never altered silently)."""
        dtype = self.request.feature(name).dtype
        typed = raw.cast(spark_type(dtype))
        invalid = invalid_value(raw, dtype, self.types.get(name))
        if invalid is None:
            return typed
        message = F.concat(
            F.lit(f"{_INVALID_MARK}view '{self.request.view.name}' feature '{name}' ({dtype}): the value "),
            raw.cast("string"), F.lit(f" in {self.describe()} does not fit {dtype} exactly"))
        return F.when(invalid, F.raise_error(message)).otherwise(typed)

    def window(self, start: datetime, end: datetime) -> DataFrame:
        return self.df.where((F.col("__ts") >= F.lit(as_utc(start))) & (F.col("__ts") < F.lit(as_utc(end))))


def _uncastable(raw: Column, dtype: str, source_type: str | None) -> Column | None:
    """The non-null source value `raw` is no value of `dtype` (2^40 for an int32); None when
    the column already has the declared type, so that it cannot hold such a value."""
    if source_type == spark_type(dtype):
        return None
    return raw.isNotNull() & raw.try_cast(spark_type(dtype)).isNull()


def _inexact(raw: Column, dtype: str, source_type: str | None) -> Column | None:
    """Casting `raw` to an integer dtype would round it (784.7 -> 785)."""
    if (element_type(dtype) or dtype) not in ("int32", "int64"):
        return None
    if source_type == spark_type(dtype) or re.sub(r"^array<(.*)>$", r"\1", source_type or "") in _SPARK_INTEGERS:
        return None
    exact = "array<double>" if element_type(dtype) else "double"
    return raw.isNotNull() & ~raw.try_cast(spark_type(dtype)).cast(exact).eqNullSafe(raw.try_cast(exact))


def invalid_value(raw: Column, dtype: str, source_type: str | None) -> Column | None:
    """Either condition above: a source value that does not fit `dtype` exactly (SPEC §7)."""
    found = None
    for cond in (_uncastable(raw, dtype, source_type), _inexact(raw, dtype, source_type)):
        if cond is not None:
            found = cond if found is None else (found | cond)
    return found


def spark_query(spark: SparkSession, query: str) -> tuple[str, str | None]:
    """The query as Spark runs it, and why it is refused, or None: a `query:` source must be
    exactly one read-only query, judged by Spark's own query parser (a trailing `;` is fine)."""
    text = query.strip().rstrip(";").strip()
    parser = spark._jsparkSession.sessionState().sqlParser()
    try:
        parser.parseQuery(text)
    except Exception as exc:
        return text, (f"it is not one read-only Spark SQL query (SELECT, WITH ... SELECT, VALUES): "
                      f"{_first_line(exc)}")
    return text, None


class SparkOfflineStore:
    def __init__(self, root: Path, config: SparkOfflineConfig):
        self.root = Path(root).resolve()
        self.config = config

    @classmethod
    def from_config(cls, config: SparkOfflineConfig, root: Path) -> "SparkOfflineStore":
        return cls(root, config)

    @property
    def spark(self) -> SparkSession:
        """Started on first use: opening the store (e.g. for `apply` without query sources)
        costs nothing."""
        return spark_session(self.config)

    def close(self) -> None:
        """The session is the process's, shared by every store: it stays up (Spark stops it at exit)."""

    def check_sources(self, defs: Any, origins: dict | None = None) -> None:
        """Refuse (exit 2) every query source that is not one read-only Spark SQL query."""
        queries = [s for s in defs.sources.values() if isinstance(s, QuerySource)]
        if not queries:
            return
        problems = []
        for source in queries:
            _, problem = spark_query(self.spark, source.query)
            if problem:
                problems.append(Problem(f"query source refused: {problem}",
                                        file=(origins or {}).get(("source", source.name)), kind="source",
                                        name=source.name, field="query",
                                        hint="write one Spark SQL SELECT (or WITH ... SELECT) that reads the "
                                             "source rows, e.g. SELECT * FROM parquet.`s3a://bucket/path`"))
        if problems:
            raise DefinitionError(problems)

    # -- point-in-time join ---------------------------------------------------------------

    def get_historical_features(self, entity_rows: pa.Table | EntityFiles, requests: list[ViewRequest], *,
                                timestamp_column: str = "event_timestamp",
                                full_feature_names: bool = False) -> pa.RecordBatchReader:
        with _spark_errors(requests):
            spark = self.spark
            if isinstance(entity_rows, EntityFiles):
                entities = _file_entities(spark, entity_rows, requests, timestamp_column, full_feature_names)
            else:
                entities = _table_entities(spark, entity_rows, requests, timestamp_column, full_feature_names)
            sources = [_Source(spark, self.root, r) for r in requests]
            frame = entities.frame
            outputs: list[str] = []
            for i, src in enumerate(sources):
                frame = _pit_step(frame, src, i)
                outputs += [f"__f{i}_{j}" for j in range(len(src.request.features))]
            found = frame.select("__row", *entities.carried, *outputs)
            dtypes = [r.feature(f).dtype for r in requests for f in r.features]
            names = _output_names(entities.schema.names, requests, full_feature_names)
            schema = pa.schema([*entities.schema, *(pa.field(n, arrow_type(d)) for n, d in zip(names, dtypes))])
            features = pa.schema([pa.field("__row", pa.int64()),
                                  *(pa.field(f"__f{k}", arrow_type(d)) for k, d in enumerate(dtypes))])
            if _spills(spark):
                chunks = _spill_in_chunks(found, entities.count)
            else:
                collected = _to_arrow(found)
                chunks = iter([collected.take(pc.sort_indices(collected.column("__row")))])
        return pa.RecordBatchReader.from_batches(schema, _with_entity_rows(entities, chunks, features, schema))

    # -- materialization ------------------------------------------------------------------

    def latest_rows(self, request: ViewRequest, start: datetime, end: datetime,
                    batch_size: int = 100_000, rows: pa.Table | None = None) -> pa.RecordBatchReader:
        with _spark_errors([request]):
            src = _Source(self.spark, self.root, request, rows)
            window = src.window(start, end).where(_all(col(k).isNotNull() for k in src.keys))
            # The latest row is the greatest (event time, has a created time, created time):
            # a missing created time loses, as in the DuckDB engine.
            order = F.struct(F.col("__ts"), F.col("__cr").isNotNull(),
                             F.coalesce(F.col("__cr"), F.lit(datetime(1970, 1, 1, tzinfo=timezone.utc))))
            values = F.struct(F.col("__ts").alias("ts"),
                              *(col("__v_" + f).alias(f"v{j}") for j, f in enumerate(request.features)))
            top = window.groupBy(*(col(k) for k in src.keys)).agg(F.max_by(values, order).alias("__w"))
            out = top.select(*(col(k) for k in src.keys), F.col("__w.ts").alias("event_timestamp"),
                             *(src.feature(f, F.col(f"__w.v{j}")).alias(f) for j, f in enumerate(request.features)))
            schema = pa.schema([*(pa.field(e.join_key, arrow_type(e.dtype)) for e in request.entities),
                                pa.field("event_timestamp", pa.timestamp("us", tz="UTC")),
                                *(pa.field(f, arrow_type(request.feature(f).dtype)) for f in request.features)])
            return _results(out, schema, batch_size)

    def source_rows(self, request: ViewRequest, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> pa.RecordBatchReader:
        with _spark_errors([request]):
            src = _Source(self.spark, self.root, request)
            out = src.window(start, end).select(
                F.col("__ts").alias("event_timestamp"),
                *(src.feature(f, col("__v_" + f)).alias(f) for f in request.features))
            schema = pa.schema([pa.field("event_timestamp", pa.timestamp("us", tz="UTC")),
                                *(pa.field(f, arrow_type(request.feature(f).dtype)) for f in request.features)])
            return _results(out, schema, batch_size)

    def newest_event_time(self, request: ViewRequest) -> datetime | None:
        with _spark_errors([request]):
            src = _Source(self.spark, self.root, request)
            newest: datetime | None = src.df.agg(F.max("__ts")).toArrow().column(0)[0].as_py()
        return newest

    def validate_window(self, request: ViewRequest, start: datetime, end: datetime,
                        rows: pa.Table | None = None) -> ValidationReport:
        with _spark_errors([request]):
            if rows is not None:
                raw = _raw_row_report(self.spark, request, rows)
                if raw is not None:
                    return raw
            src = _Source(self.spark, self.root, request, rows)
            checks = _checks(request, src.types)
            window = src.window(start, end)
            counts = window.agg(F.count(F.lit(1)), *(F.count_if(cond) for _, cond, _ in checks)).toArrow()
            row = [counts.column(i)[0].as_py() for i in range(counts.num_columns)]
            violations = {label: n for (label, _, _), n in zip(checks, row[1:]) if n}
            failing = [(i, c) for i, c in enumerate(checks) if c[0] in violations]
            samples = []
            if failing:
                parts = [window.where(cond).select(
                    F.lit(i).alias("__i"), *(col(k) for k in src.keys), F.col("__ts").alias("event_timestamp"),
                    F.lit(label).alias("violation"), raw_col.cast("string").alias("value")).limit(SAMPLE_LIMIT)
                    for i, (_, (label, cond, raw_col)) in enumerate(failing)]
                union = parts[0]
                for part in parts[1:]:
                    union = union.unionByName(part)
                samples = pick_samples(union.toArrow().to_pylist())
        return ValidationReport(view=request.view.name, rows_checked=row[0], violations=violations, samples=samples)


# -- entity rows --------------------------------------------------------------------------------


@dataclass
class _Entities:
    """The entity rows as the join takes them: `frame` holds the typed join keys (named by join
    key), `__et`, `__row` (0..count-1, entity-row order) and the `carried` own columns; `schema`
    is the rows' own columns as the caller gave them, and `own(done, chunk)` those columns for a
    result chunk starting at row `done`."""

    frame: DataFrame
    count: int
    schema: pa.Schema
    carried: list[str]
    own: Callable[[int, pa.Table], list[Any]]


def _table_entities(spark: SparkSession, table: pa.Table, requests: list[ViewRequest], timestamp_column: str,
                    full_feature_names: bool) -> _Entities:
    """An Arrow table of entity rows (the SDK's entity_df): the narrow typed rows go into Spark
    through Arrow; the rows' own columns never leave the caller's table."""
    _output_names(table.column_names, requests, full_feature_names)
    typed = typed_entity_rows(table, requests, timestamp_column)
    frame = spark.createDataFrame(typed, schema=_spark_schema(typed)) if typed.num_rows else \
        spark.createDataFrame([], _spark_schema(typed))
    own = table.replace_schema_metadata(None)
    return _Entities(frame, own.num_rows, own.schema, [],
                     lambda done, chunk: own.slice(done, chunk.num_rows).columns)


def _file_entities(spark: SparkSession, files: EntityFiles, requests: list[ViewRequest], timestamp_column: str,
                   full_feature_names: bool) -> _Entities:
    """Entity files read by Spark itself (the driver never holds their rows): keys and the
    timestamp checked and typed by the shared rule (`entity_rows.VALUE_RULE`), rows numbered
    in file order (`_row_deltas`), and every own column carried through the join as `__o<j>`."""
    raw = _read_entities(spark, files)
    if files.schema is None and files.format == "csv":  # a URI: typed as a local file would be
        files = replace(files, schema=_uri_csv_schema(spark, raw, files))
    schema = files.schema if files.schema is not None else _arrow_schema(raw)
    _output_names(schema.names, requests, full_feature_names)
    keys = {e.join_key: e.dtype for r in requests for e in r.entities}
    check_entity_columns(schema.names, list(keys), timestamp_column)
    own = [f"__o{j}" for j in range(len(schema))]
    position = {name: own[j] for j, name in enumerate(schema.names)}
    nulls = csv_nulls()
    given = [col(f.name) if files.format != "csv" or pa.types.is_string(f.type)
             else F.when(~col(f.name).isin(nulls), col(f.name)) for f in schema]  # csv: pyarrow's null texts
    numbered = raw.select(*(c.alias(o) for c, o in zip(given, own)),
                          F.col("_metadata.file_path").alias("__file"),
                          F.col("_metadata.file_block_start").alias("__block"),
                          F.monotonically_increasing_id().alias("__m"))
    types = {f.name: f.dataType for f in raw.schema.fields}
    parsed = {name: _parsed(col(position[name]), dtype, types[name], schema.field(name).type)
              for name, dtype in [*keys.items(), (timestamp_column, "timestamp")]}
    deltas, count = _row_deltas(spark, numbered, files, schema, timestamp_column, keys,
                                {name: bad for name, (_, bad) in parsed.items()})
    frame = numbered.join(F.broadcast(deltas), ["__file", "__block"]).select(
        *(parsed[k][0].alias(k) for k in keys), parsed[timestamp_column][0].alias("__et"),
        (F.col("__m") + F.col("__delta")).alias("__row"), *own)

    def columns(done: int, chunk: pa.Table) -> list[Any]:
        return [_as_given(chunk.column(1 + j), field, files) for j, field in enumerate(schema)]
    return _Entities(frame, count, schema, own, columns)


def _uri_csv_schema(spark: SparkSession, raw: DataFrame, files: EntityFiles) -> pa.Schema:
    """The types of csv entity files given as a URI, which the driver does not list or read
    itself: the first file's first block (in path order, as for local files) read through
    Spark's own Hadoop file system, typed by pyarrow exactly as `entity_files` types a local
    csv, so that the same rows come back in the same types whichever way they were named."""
    listed = sorted(raw.inputFiles())
    if not listed:
        raise EntityRowsError(f"no entity file matches {files.given}")
    try:
        context: Any = spark.sparkContext  # py4j's gateway objects are untyped
        path = context._jvm.org.apache.hadoop.fs.Path(listed[0])
        stream = path.getFileSystem(context._jsc.hadoopConfiguration()).open(path)
        try:
            head = bytes(stream.readNBytes(CSV_BLOCK_BYTES))
        finally:
            stream.close()
    except Py4JError as exc:
        raise EntityRowsError(f"cannot read entity file {listed[0]}: {_first_line(exc)}") from None
    if len(head) == CSV_BLOCK_BYTES and b"\n" in head:  # whole rows only, as pyarrow's first block
        head = head[:head.rindex(b"\n") + 1]
    try:
        return csv_schema(io.BytesIO(head), files.text_columns)
    except pa.ArrowInvalid as exc:
        raise EntityRowsError(f"cannot read entity file {listed[0]}: {exc}") from None


def _read_entities(spark: SparkSession, files: EntityFiles) -> DataFrame:
    """The files as Spark reads them. Parquet with the columns the driver read from the first
    file's footer (one schema, no footer job; nanosecond times, which Spark refuses as
    timestamps, as integers), csv as text, every file's header checked against the first's."""
    try:
        if files.format == "csv":
            reader = spark.read.option("header", True).option("enforceSchema", False)
            if files.schema is not None:
                reader = reader.schema(", ".join(f"`{n.replace('`', '``')}` string" for n in files.schema.names))
            return reader.csv(list(files.paths))
        reader = spark.read
        if files.schema is not None:
            from pyspark.sql.types import StructField, StructType
            reader = reader.schema(StructType([StructField(f.name, _spark_read_type(f.type)) for f in files.schema]))
        return reader.parquet(*files.paths)
    except (PySparkException, Py4JError) as exc:
        raise EntityRowsError(f"cannot read the entity rows: {_first_line(exc)}") from None


def _spark_read_type(arrow: pa.DataType) -> Any:
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import DecimalType, IntegerType, LongType, ShortType
    if pa.types.is_timestamp(arrow) and arrow.unit == "ns":
        return LongType()
    unsigned = {pa.uint8(): ShortType(), pa.uint16(): IntegerType(), pa.uint32(): LongType(),
                pa.uint64(): DecimalType(20, 0)}
    if arrow in unsigned:
        return unsigned[arrow]
    try:
        return from_arrow_type(arrow)
    except (PySparkException, TypeError) as exc:
        raise EntityRowsError(f"an entity file holds a column of type {arrow}, which Spark does not read: "
                              f"{_first_line(exc)}") from None


def _arrow_schema(frame: DataFrame) -> pa.Schema:
    """The Arrow schema of what Spark read (files given as a URI, which the driver does not open)."""
    from pyspark.sql.pandas.types import to_arrow_schema
    return to_arrow_schema(frame.schema)


def _parsed(raw: Column, dtype: str, spark_kind: Any, arrow: pa.DataType) -> tuple[Column, Column]:
    """(the value cast as the join takes it, the condition refusing it): `entity_rows.VALUE_RULE`
    in Spark columns. Spark has no infinite timestamp ('infinity' fails the cast), so
    "finite" needs no test of its own; a column already of the target type needs none."""
    name = spark_kind.simpleString()
    if dtype == "timestamp":
        if name == "bigint" and pa.types.is_timestamp(arrow):  # nanosecond parquet times, read as integers:
            # to the nearest microsecond, as DuckDB casts them (exact: decimal, not double)
            micros = F.floor((raw.cast("decimal(20,0)") + F.lit(500)) / F.lit(1000)).cast("bigint")
            return F.timestamp_micros(micros), F.lit(False)
        typed = raw.try_cast("timestamp")
        if name in ("timestamp", "timestamp_ntz", "date"):
            return typed, F.lit(False)
    else:
        target = spark_type(dtype)
        typed = raw.try_cast(target)
        if name == target:
            return typed, F.lit(False)
    rendered = {"cast": typed.isNull(), "finite": F.lit(False),
                "whole": ~typed.cast("double").eqNullSafe(raw.try_cast("double"))}
    refused = F.lit(False)
    for check in entity_checks(dtype, name in _SPARK_INTEGERS):
        refused = refused | rendered[check]
    return typed, raw.isNotNull() & refused


def _row_deltas(spark: SparkSession, numbered: DataFrame, files: EntityFiles, schema: pa.Schema,
                timestamp_column: str, keys: dict[str, str], refused: dict[str, Column]) -> tuple[DataFrame, int]:
    """Give the rows their position in file order, deterministically: Spark reads a file in
    splits (`__block`, its start offset) packed into tasks biggest first, and numbers rows
    per task (`__m`), so one small job counts each split's rows and its first `__m`, the
    driver orders the splits (files by path, then offset) and hands back, per split, what
    turns `__m` into the row's position. The same job counts the values the rule refuses;
    the first column with any is an EntityRowsError naming the file and row."""
    names = list(refused)
    splits = numbered.groupBy("__file", "__block").agg(
        F.count(F.lit(1)).alias("n"), F.min("__m").alias("m0"),
        *(F.count_if(refused[c]).alias(f"bad{i}") for i, c in enumerate(names)),
        *(F.min(F.when(refused[c], F.col("__m"))).alias(f"first{i}") for i, c in enumerate(names))).toArrow()
    order = sorted(range(splits.num_rows), key=lambda i: (_path_key(splits["__file"][i].as_py()),
                                                          splits["__block"][i].as_py()))
    start, starts = 0, [0] * splits.num_rows
    file_start: dict[str, int] = {}
    for i in order:
        starts[i] = start
        file_start.setdefault(splits["__file"][i].as_py(), start)
        start += splits["n"][i].as_py()
    for k, column in enumerate(names):
        count = pc.sum(splits[f"bad{k}"]).as_py() or 0
        if not count:
            continue
        first = min((starts[i] + splits[f"first{k}"][i].as_py() - splits["m0"][i].as_py(), i)
                    for i in order if splits[f"first{k}"][i].is_valid)
        split = first[1]
        path = splits["__file"][split].as_py()
        sample = numbered.where((F.col("__file") == path) & (F.col("__m") == splits[f"first{k}"][split].as_py())) \
            .select(*(F.col(f"__o{j}").alias(name) for j, name in enumerate(schema.names))).limit(1).toArrow()
        several = len(files.paths) > 1 or _URI.match(files.paths[0])
        where = row_number(first[0] - file_start[path], _path_key(path) if several else None)
        raise bad_values(column, column == timestamp_column, keys.get(column, "timestamp"), count, where,
                         sample.to_pylist()[0])
    deltas = pa.table({"__file": splits["__file"], "__block": splits["__block"],
                       "__delta": pa.array([starts[i] - splits["m0"][i].as_py() for i in range(splits.num_rows)],
                                           pa.int64())})
    from pyspark.sql.types import LongType, StringType, StructField, StructType
    spark_schema = StructType([StructField("__file", StringType()), StructField("__block", LongType()),
                               StructField("__delta", LongType())])
    frame = spark.createDataFrame(deltas, schema=spark_schema) if deltas.num_rows else \
        spark.createDataFrame([], spark_schema)
    return frame, start


def _path_key(path: str) -> str:
    """A file's place in the order of entity files: its path, as the driver sorts paths (Spark
    names a local file by a URI with %-escapes)."""
    from urllib.parse import unquote, urlsplit
    parts = urlsplit(path)
    return unquote(parts.path) if parts.scheme == "file" else path


def _as_given(column: Any, field: pa.Field, files: EntityFiles) -> Any:
    """An own column of entity files back in the caller's type: csv text converted as
    `entity_rows.from_csv_text` converts it, parquet values cast back from Spark's types
    (timestamps come back as microseconds, nanosecond ones as integers)."""
    if files.format == "csv":
        return from_csv_text(column, field) if files.schema is not None else pc.fill_null(column, "")
    if pa.types.is_timestamp(field.type) and pa.types.is_integer(column.type) and field.type.unit != "ns":
        column = column.cast(pa.timestamp("us", tz="UTC"))
    return column.cast(field.type)


# -- the plan pieces ------------------------------------------------------------------------


def _all(conditions: Iterator[Column] | Any) -> Column:
    found = F.lit(True)
    for cond in conditions:
        found = found & cond
    return found


def _spark_schema(typed: pa.Table) -> Any:
    """The Spark schema of the typed entity rows (given explicitly, so zero rows work too)."""
    from pyspark.sql.pandas.types import from_arrow_schema
    return from_arrow_schema(typed.schema)


def _pit_step(entities: DataFrame, src: _Source, i: int) -> DataFrame:
    """The entity rows with view `i`'s features added as `__f{i}_{j}`: entity rows and the
    source's rows in one union, partitioned by the view's join keys and ordered by time (a
    source row before an entity row at the same time: `<=`; among source rows the greater
    created time later, a missing one first); each entity row takes the last source row
    before it. A row exactly ttl old still counts."""
    request = src.request
    carried = entities.columns
    source = src.df.where(_all(col(k).isNotNull() for k in src.keys) & F.col("__ts").isNotNull()).select(
        *(col(k) for k in src.keys), F.col("__ts").alias("__t"), F.lit(0).alias("__kind"), F.col("__cr"),
        F.struct(F.col("__ts").alias("ts"),
                 *(col("__v_" + f).alias(f"v{j}") for j, f in enumerate(request.features))).alias("__s"))
    marked = entities.select("*", F.col("__et").alias("__t"), F.lit(1).alias("__kind"))
    union = marked.unionByName(source, allowMissingColumns=True)
    order = Window.partitionBy(*(col(k) for k in src.keys)).orderBy(
        F.col("__t").asc_nulls_first(), F.col("__kind"), F.col("__cr").asc_nulls_first()
    ).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    hit = F.last(F.col("__s"), ignorenulls=True).over(order)
    picked = union.select("*", hit.alias("__hit")).where(F.col("__kind") == 1)
    if request.view.ttl:
        fresh = F.unix_micros(F.col("__hit.ts")) >= F.unix_micros(F.col("__et")) - int(request.view.ttl) * 1_000_000
        picked = picked.withColumn("__hit", F.when(fresh, F.col("__hit")))
    return picked.select(*(col(c) for c in carried),
                         *(src.feature(f, F.col(f"__hit.v{j}")).alias(f"__f{i}_{j}")
                           for j, f in enumerate(request.features)))


def _checks(request: ViewRequest, source_types: dict[str, str]) -> list[tuple[str, Column, Column]]:
    """(label, condition on the window, column) for every rule a feature declares, labelled as
    the DuckDB engine labels them. A column already of the declared type gets no cast check."""
    checks = []
    for name in request.features:
        feature = request.feature(name)
        raw = col("__v_" + name)
        typed = raw.try_cast(spark_type(feature.dtype))
        is_list = element_type(feature.dtype) is not None
        uncastable = _uncastable(raw, feature.dtype, source_types.get(name))
        if uncastable is not None:
            checks.append((f"{name}: not a valid {feature.dtype}", uncastable, raw))
        inexact = _inexact(raw, feature.dtype, source_types.get(name))
        if inexact is not None:
            checks.append((f"{name}: not a whole number, would be rounded to fit {feature.dtype}", inexact, raw))
        if not feature.nullable:
            checks.append((f"{name}: null in a non-nullable feature", raw.isNull(), raw))
        c = feature.constraints
        if c is None:
            continue
        low, high = (F.array_min(typed), F.array_max(typed)) if is_list else (typed, typed)
        if c.min is not None:
            checks.append((f"{name}: below min {c.min:g}", low < F.lit(float(c.min)), raw))
        if c.max is not None:
            checks.append((f"{name}: above max {c.max:g}", high > F.lit(float(c.max)), raw))
        if c.allowed is not None:
            elem = _SPARK_TYPES[element_type(feature.dtype) or feature.dtype]
            allowed = F.array_compact(F.array(*(F.lit(str(v)).try_cast(elem) for v in c.allowed)))
            cond = (F.exists(typed, _not_in(allowed)) if is_list
                    else typed.isNotNull() & ~F.array_contains(allowed, typed))
            checks.append((f"{name}: not in allowed values", cond, raw))
    return checks


def _not_in(allowed: Column) -> Any:
    """For `exists`: an element present and not among `allowed`."""
    return lambda x: x.isNotNull() & ~F.array_contains(allowed, x)


def _raw_row_report(spark: SparkSession, request: ViewRequest, rows: pa.Table) -> ValidationReport | None:
    """Pushed rows come from JSON: a key or timestamp that does not parse would stop the
    normalising casts, so these are counted first, labelled as the DuckDB engine does."""
    frame = spark.createDataFrame(rows)
    present = set(frame.columns)
    src = request.source
    checks = [(f"{e.join_key}: missing or not a valid {e.dtype}",
               col(e.join_key).try_cast(spark_type(e.dtype)).isNull(), col(e.join_key))
              for e in request.entities if e.join_key in present]
    for column in filter(None, (src.timestamp_field, src.created_timestamp_field)):
        if column not in present:
            continue
        bad = col(column).isNotNull() & col(column).try_cast("timestamp").isNull()
        if column != src.created_timestamp_field:
            bad = col(column).isNull() | bad
        checks.append((f"{column}: missing or not an ISO 8601 timestamp", bad, col(column)))
    counts = frame.agg(F.count(F.lit(1)), *(F.count_if(cond) for _, cond, _ in checks)).toArrow()
    row = [counts.column(i)[0].as_py() for i in range(counts.num_columns)]
    violations = {label: n for (label, _, _), n in zip(checks, row[1:]) if n}
    if not violations:
        return None
    samples: list[dict] = []
    for label, cond, raw in checks:
        if label in violations:
            found = frame.where(cond).select(raw.cast("string").alias("value")).limit(SAMPLE_LIMIT).toArrow()
            samples += [{"violation": label, "value": value} for value in found.column(0).to_pylist()]
    return ValidationReport(view=request.view.name, rows_checked=row[0], violations=violations,
                            samples=samples[:SAMPLE_LIMIT])


# -- results and errors -----------------------------------------------------------------------


def _conform(rows: Any, schema: pa.Schema) -> Any:
    """A table or batch with its columns (by position) cast to the DuckDB engine's schema: the
    same types, list element names and zone, whichever way the rows came back (spilled
    timestamps come back as micros)."""
    kind = pa.Table if isinstance(rows, pa.Table) else pa.RecordBatch
    return kind.from_arrays([rows.column(i).cast(f.type) for i, f in enumerate(schema)], schema=schema)


def _to_arrow(frame: DataFrame) -> pa.Table:
    return frame.toArrow()


def _spills(spark: SparkSession) -> bool:
    """Results go through a temporary Parquet directory when Spark's executors write to the
    driver's own disk (a local master); a cluster's results are collected (docs/spark.md)."""
    return RESULTS == "spill" and (spark.sparkContext.master or "").startswith("local")


_SPILL_LOCK = threading.Lock()
_spill_root: list[Path] = []


def _spill_dir() -> Path:
    """A fresh directory for one result, under this process's spill root (removed at exit)."""
    with _SPILL_LOCK:
        if not _spill_root:
            root = Path(tempfile.mkdtemp(prefix=f"featurectl-spark-results-{os.getpid()}-"))
            atexit.register(shutil.rmtree, root, True)
            _spill_root.append(root)
    return Path(tempfile.mkdtemp(dir=_spill_root[0]))


def _spillable(frame: DataFrame) -> DataFrame:
    """Timestamps as microseconds since the epoch: Spark's Parquet writer would store them as
    INT96 (a session setting decides), and the cast back on the driver is exact."""
    from pyspark.sql.types import ArrayType, TimestampType
    cols = []
    for field in frame.schema.fields:
        c = col(field.name)
        if isinstance(field.dataType, TimestampType):
            c = F.unix_micros(c)
        elif isinstance(field.dataType, ArrayType) and isinstance(field.dataType.elementType, TimestampType):
            c = F.transform(c, F.unix_micros)
        cols.append(c.alias(field.name))
    return frame.select(*cols)


def _write(frame: DataFrame, where: Path, partition_by: str | None = None) -> None:
    writer = _spillable(frame).write.mode("overwrite").option("compression", "lz4")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.parquet(where.as_uri())


def _results(frame: DataFrame, schema: pa.Schema, batch_size: int) -> pa.RecordBatchReader:
    """The rows of `frame` (in no order) in `schema`, `batch_size` at a time. Spilled, the
    driver holds one batch at a time; collected, the whole result."""
    if not _spills(frame.sparkSession):
        return _reader(_to_arrow(frame), schema, batch_size)
    where = _spill_dir()
    try:
        _write(frame, where / "out")
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)
        raise

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for path in sorted((where / "out").glob("*.parquet")):
                for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
                    yield _conform(batch, schema)
        finally:
            shutil.rmtree(where, ignore_errors=True)
    return pa.RecordBatchReader.from_batches(schema, batches())


def _spill_in_chunks(found: DataFrame, rows: int) -> Iterator[pa.Table]:
    """The point-in-time result in entity-row order, CHUNK_ROWS rows at a time: written by
    Spark partitioned by `__row // CHUNK_ROWS` (a sort within each task, no shuffle), each
    chunk read back on its own and put in order on the driver."""
    where = _spill_dir()
    try:
        _write(found.withColumn("__chunk", F.floor(F.col("__row") / F.lit(CHUNK_ROWS))), where / "out", "__chunk")
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)
        raise

    def chunks() -> Iterator[pa.Table]:
        try:
            for chunk in range(-(-rows // CHUNK_ROWS)):
                files = sorted((where / "out" / f"__chunk={chunk}").glob("*.parquet"))
                part = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
                if part is None:
                    continue
                yield part.take(pc.sort_indices(part.column("__row")))
        finally:
            shutil.rmtree(where, ignore_errors=True)
    return chunks()


def _with_entity_rows(entities: "_Entities", chunks: Iterator[pa.Table], features: pa.Schema,
                      schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The entity rows' own columns beside the features found for them, batch by batch; the
    chunks arrive in entity-row order (`__row` 0, 1, ...), one row for each entity row:
    `__row`, the own columns Spark carried (entity files), then the features."""
    done, width = 0, len(entities.carried)
    for chunk in chunks:
        rows = chunk.column(0)
        if len(rows) and (rows[0].as_py() != done or rows[-1].as_py() != done + len(rows) - 1):
            raise OfflineStoreError(f"internal error: the join returned rows {rows[0]}..{rows[-1]} "
                                    f"where rows from {done} were due")
        found = _conform(chunk.select([0, *range(1 + width, chunk.num_columns)]), features)
        out = pa.Table.from_arrays([*entities.own(done, chunk), *found.columns[1:]], schema=schema)
        yield from out.to_batches(max_chunksize=100_000)
        done += len(rows)
    if done != entities.count:
        raise OfflineStoreError(f"internal error: the join returned {done} rows for {entities.count} entity rows")


def _reader(table: pa.Table, schema: pa.Schema, batch_size: int) -> pa.RecordBatchReader:
    """The collected Arrow result in the DuckDB engine's schema, handed out `batch_size` rows at a time."""
    return pa.RecordBatchReader.from_batches(schema, _conform(table, schema).to_batches(max_chunksize=batch_size))


def _join_error(exc: BaseException, requests: list[ViewRequest]) -> OfflineStoreError:
    text = str(exc)
    if _INVALID_MARK in text:
        what = text.split(_INVALID_MARK, 1)[1].splitlines()[0]
        what = re.sub(r"\s*SQLSTATE: \w+.*$", "", what).strip()
        return InvalidSourceData(what + ". Nothing was written. Fix the source data, or declare the feature "
                                 "with a dtype that holds the value")
    views = ", ".join(f"'{r.view.name}' (source '{r.source.name}')" for r in requests)
    return OfflineStoreError(
        f"Spark failed on view(s) {views}: {_first_line(exc)}. Check that every source column holds values "
        f"of its feature's declared dtype, that join-key columns (in the sources and the entity rows) hold "
        f"the entity dtypes, and that timestamps are timestamps")


@contextmanager
def _spark_errors(requests: list[ViewRequest]) -> Iterator[None]:
    """A Spark or JVM error while planning or running becomes ours (exit 1, 2 or 3)."""
    try:
        yield
    except (PySparkException, Py4JError) as exc:
        raise _join_error(exc, requests) from None
