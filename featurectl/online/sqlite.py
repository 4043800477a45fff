"""Embedded online store: one SQLite file, one table per (project, view, major version).

A table per namespace (rather than one table with the namespace in the key) keeps keys
short and each view's B-tree small, makes a new major start empty by construction, and
lets teardown of an old major be one DROP TABLE instead of a range delete. The table name
is the shared namespace string (``fc:project:view:vN``), quoted.

Bookkeeping lives in the same file, so a deleted or emptied file has none: `_featurectl_store`
holds the store's random id, `_featurectl_views` per namespace the watermark and the newest
event time written (epoch microseconds). Namespaces start with ``fc:``, so the names cannot clash.
"""
from __future__ import annotations

import itertools
import sqlite3
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from featurectl.backends import config_path
from featurectl.core.sql import ident
from featurectl.online.config import SqliteOnlineConfig
from featurectl.online import names
from featurectl.online.base import OnlineRows, OnlineStoreError, OnlineTable

if TYPE_CHECKING:
    import pyarrow as pa

    from featurectl.online.encoding import ValueEncoder

_READ_CHUNK = 500  # keys per SELECT ... IN (...), far below SQLite's variable limit
# Rows per INSERT of a write: one statement of many VALUES rows steps once where executemany
# steps (binds, runs and resets the statement) once per row; 100k upserts cost ~0.14 s CPU
# instead of ~0.19 s (docs/benchmarks.md). Fewer when the library allows fewer variables.
# 100, not 1,000: each statement keeps the pages it changes in its statement journal (in
# memory, `temp_store`), ~4 MB for 1,000 random keys; glibc gave that back to the system and
# faulted it in again at every push (~800 page faults a push), ~0.4 MB it keeps for the next.
# Fresh 1,000-row pushes on the server: ~25% less CPU with both (docs/benchmarks.md).
_WRITE_ROWS = 100
# Page size of a NEW store file (SQLite ignores it for an existing one, and in WAL mode even
# VACUUM keeps the old size). Rows are ~180 bytes and a push upserts random keys, so each row
# dirties a page of its own that the WAL writes whole: smaller pages write fewer bytes per push
# (docs/benchmarks.md, docs/decisions.md).
_PAGE_SIZE = 2048
_STORE, _VIEWS = "_featurectl_store", "_featurectl_views"
_BOOKKEEPING = (
    f"CREATE TABLE IF NOT EXISTS {_STORE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {_VIEWS} (namespace TEXT PRIMARY KEY, watermark INTEGER, newest_event INTEGER)",
)
# A conditional update: the watermark only ever moves forwards, whoever commits last.
_ADVANCE = (
    f"INSERT INTO {_VIEWS} (namespace, watermark) VALUES (?, ?) ON CONFLICT (namespace) DO UPDATE "
    "SET watermark = excluded.watermark WHERE watermark IS NULL OR excluded.watermark > watermark"
)
_NEWEST = (
    f"INSERT INTO {_VIEWS} (namespace, newest_event) VALUES (?, ?) ON CONFLICT (namespace) DO UPDATE "
    "SET newest_event = excluded.newest_event WHERE newest_event IS NULL OR excluded.newest_event > newest_event"
)


class SqliteOnlineStore:
    def __init__(self, path: Path, rows_per_statement: int = _WRITE_ROWS) -> None:
        self.path = Path(path)
        self.rows_per_statement = rows_per_statement  # the contract tests make it small
        self._lock = threading.Lock()
        self._tables: set[str] = set()
        self._bookkeeping = False
        # The value encoder (DuckDB) and pyarrow are loaded by the first write or read, so that
        # bookkeeping reads (freshness, catalog) start a third of a second sooner.
        self._encoder: "ValueEncoder | None" = None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
            self._con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            # Before anything is written: only a file without pages takes a page size.
            self._con.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            # WAL lets readers run during a materialization. FULL syncs the WAL at each commit, so
            # a batch reported written survives a power loss before the registry's watermark
            # moves past it; it costs one fsync per batch, not per entity.
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            # Checkpoint every ~40 MB of WAL, not SQLite's 4 MB: a push of 1,000 random keys
            # dirties ~1,000 pages (4 MB), so the default copied them into the file and synced
            # it at nearly every push; at 10,000 pages a page written by several pushes is
            # copied once, and the file synced once per ~10 (fresh 1,000-row pushes: ~17% less
            # CPU, ~1/3 less wall; docs/benchmarks.md). Commits still sync the WAL (FULL).
            self._con.execute("PRAGMA wal_autocheckpoint=10000")
            # An upsert of many rows inside our transaction keeps a statement journal (the pages
            # it changed, to undo that statement alone if it aborts): by default a temporary file,
            # created, written (~4 MB for 1,000 random keys, as much as the WAL), and unlinked
            # at every statement. In memory it costs no system call (and `_WRITE_ROWS` keeps it
            # small); the transaction's own rollback is unchanged (docs/benchmarks.md).
            self._con.execute("PRAGMA temp_store=MEMORY")
        except sqlite3.Error as exc:
            raise self._error("opening the database", exc) from None

    @classmethod
    def from_config(cls, config: SqliteOnlineConfig, root: Path) -> "SqliteOnlineStore":
        path = config_path(config.path, root)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OnlineStoreError(
                f"cannot create the directory {path.parent} for the SQLite online store: {exc.strerror}; "
                "fix online_store.path in featurectl.yaml or the directory's permissions"
            ) from None
        return cls(path)

    def _error(self, doing: str, exc: BaseException) -> OnlineStoreError:
        return OnlineStoreError(
            f"SQLite online store {self.path}: {doing} failed: {exc}; check that the file and its "
            "directory exist, are writable and the disk has space, or fix online_store.path in featurectl.yaml"
        )

    def _ensure_table(self, name: str) -> None:
        if name not in self._tables:
            # WITHOUT ROWID: the blob key is the B-tree key, so a read is one index lookup.
            self._con.execute(
                f"CREATE TABLE IF NOT EXISTS {ident(name)} (key BLOB PRIMARY KEY, "
                "event_ts INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
            )
            self._tables.add(name)

    def _ensure_bookkeeping(self) -> None:
        """Inside a write transaction: the bookkeeping tables and this store's id."""
        if not self._bookkeeping:
            for statement in _BOOKKEEPING:
                self._con.execute(statement)
            self._con.execute(f"INSERT OR IGNORE INTO {_STORE} (key, value) VALUES ('store_id', ?)",
                              (uuid.uuid4().hex,))
            self._bookkeeping = True

    def _transaction(self, doing: str, work) -> Any:
        """Run `work()` in one IMMEDIATE transaction with the bookkeeping in place."""
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    self._ensure_bookkeeping()
                    result = work()
                    self._con.execute("COMMIT")
                except BaseException:
                    if self._con.in_transaction:
                        self._con.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._tables.clear()
                self._bookkeeping = False
                raise self._error(doing, exc) from None
        return result

    def _table_exists(self, name: str) -> bool:
        if name not in self._tables:
            found = self._con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
            if not found:
                return False
            self._tables.add(name)
        return True

    def write(self, table: OnlineTable, batch: pa.RecordBatch) -> int:
        import pyarrow.compute as pc

        from featurectl.online import encoding

        name = names.namespace(table)
        if batch.num_rows == 0:
            return 0
        keys = encoding.encode_keys(table, batch)
        micros = encoding.event_micros(batch)
        # Rows in key order fill the B-tree sequentially: about a third fewer page splits and cache misses.
        order = pc.sort_indices(keys)
        times = micros.take(order).to_pylist()
        keys = keys.take(order).to_pylist()
        newest = pc.max(micros).as_py()

        def work() -> int:
            if self._encoder is None:
                self._encoder = encoding.ValueEncoder()
            values = self._encoder.encode(table, batch).take(order).to_pylist()
            self._ensure_table(name)
            written = self._upsert(name, keys, times, values)
            self._con.execute(_NEWEST, (name, newest))
            return written

        # The lock taken by _transaction also guards the encoder's DuckDB connection.
        return self._transaction(f"writing view {table.view!r}", work)

    def _upsert(self, name: str, keys: list, times: list, values: list) -> int:
        """Newer-wins upserts of the rows (in order, as one row at a time would leave them: a
        key given twice is compared with the row before it); returns the rows changed."""
        per = max(1, min(self.rows_per_statement, self._con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 3))

        def upsert(rows: int) -> str:
            return (f"INSERT INTO {ident(name)} (key, event_ts, value) VALUES {','.join(['(?,?,?)'] * rows)} "
                    "ON CONFLICT (key) DO UPDATE SET event_ts = excluded.event_ts, value = excluded.value "
                    "WHERE excluded.event_ts >= event_ts")

        flat = list(itertools.chain.from_iterable(zip(keys, times, values)))
        whole = len(keys) - len(keys) % per
        written = 0
        # rowcount sums changes(): an upsert whose WHERE is false changes nothing.
        if whole:
            step = 3 * per
            written += self._con.executemany(upsert(per), (flat[i:i + step] for i in range(0, 3 * whole, step))).rowcount
        if whole < len(keys):
            written += self._con.execute(upsert(len(keys) - whole), flat[3 * whole:]).rowcount
        return written

    def read(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]], features: Sequence[str],
             now: datetime) -> OnlineRows:
        from featurectl.online import encoding

        name = names.namespace(table)
        encoded = [encoding.encode_key(table, key) for key in keys]
        stored: dict[bytes, tuple[int, bytes]] = {}
        unique = list(dict.fromkeys(encoded))
        with self._lock:
            try:
                if self._table_exists(name):
                    for start in range(0, len(unique), _READ_CHUNK):
                        chunk = unique[start:start + _READ_CHUNK]
                        marks = ",".join("?" * len(chunk))
                        rows = self._con.execute(
                            f"SELECT key, event_ts, value FROM {ident(name)} WHERE key IN ({marks})", chunk
                        ).fetchall()
                        stored.update((key, (ts, value)) for key, ts, value in rows)
            except sqlite3.Error as exc:
                raise self._error(f"reading view {table.view!r}", exc) from None
        return encoding.build_rows(table, [stored.get(key) for key in encoded], features, now)

    def delete_table(self, table: OnlineTable) -> None:
        """Drop one (project, view, major) namespace, its values and its bookkeeping."""
        name = names.namespace(table)

        def work() -> None:
            self._con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
            self._con.execute(f"DELETE FROM {_VIEWS} WHERE namespace = ?", (name,))
            self._tables.discard(name)

        self._transaction(f"dropping view {table.view!r}", work)

    # ---- bookkeeping ------------------------------------------------------------------

    def store_id(self) -> str:
        def work() -> str:
            return self._con.execute(f"SELECT value FROM {_STORE} WHERE key = 'store_id'").fetchone()[0]

        return self._transaction("reading the store id", work)

    def _view_column(self, doing: str, column: str, names: Sequence[str]) -> list[int | None]:
        with self._lock:
            try:
                found = self._con.execute(f"SELECT 1 FROM sqlite_master WHERE type='table' AND name='{_VIEWS}'").fetchone()
                if not found:
                    return [None] * len(names)
                marks = ",".join("?" * len(names))
                rows = dict(self._con.execute(
                    f"SELECT namespace, {column} FROM {_VIEWS} WHERE namespace IN ({marks})", list(names)).fetchall())
            except sqlite3.Error as exc:
                raise self._error(doing, exc) from None
        return [rows.get(name) for name in names]

    def get_watermark(self, table: OnlineTable) -> datetime | None:
        (micros,) = self._view_column(f"reading the watermark of view {table.view!r}", "watermark",
                                      [names.namespace(table)])
        return None if micros is None else names.micros_to_datetime(micros)

    def watermarks(self, tables: Sequence[OnlineTable]) -> list[datetime | None]:
        if not tables:
            return []
        found = self._view_column("reading the watermarks", "watermark", [names.namespace(t) for t in tables])
        return [None if micros is None else names.micros_to_datetime(micros) for micros in found]

    def advance_watermark(self, table: OnlineTable, watermark: datetime) -> datetime:
        name = names.namespace(table)

        def work() -> int:
            self._con.execute(_ADVANCE, (name, names.datetime_to_micros(watermark)))
            return self._con.execute(f"SELECT watermark FROM {_VIEWS} WHERE namespace = ?", (name,)).fetchone()[0]

        return names.micros_to_datetime(self._transaction(f"advancing the watermark of view {table.view!r}", work))

    def newest_event_times(self, tables: Sequence[OnlineTable]) -> list[datetime | None]:
        if not tables:
            return []
        found = self._view_column("reading the newest event times", "newest_event",
                                  [names.namespace(t) for t in tables])
        return [None if micros is None else names.micros_to_datetime(micros) for micros in found]

    def close(self) -> None:
        with self._lock:
            self._con.close()
            if self._encoder is not None:
                self._encoder.close()
