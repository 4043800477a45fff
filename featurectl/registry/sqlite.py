"""The embedded registry: one SQLite file, safe for several processes (WAL + BEGIN IMMEDIATE)."""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from featurectl.backends import config_path
from featurectl.registry.config import SqliteRegistryConfig
from featurectl.registry.base import RegistryError
from featurectl.registry.sql import SqlRegistry

BUSY_TIMEOUT_S = 30.0


class SqliteRegistry(SqlRegistry):
    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        where = f"the SQLite registry {self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(
                f"cannot create the directory of {where}: {exc.strerror}; "
                "make it writable or set registry.path in featurectl.yaml to a writable place"
            ) from None
        try:
            # isolation_level=None: we issue BEGIN ourselves, so commits can take the lock up front.
            conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            super().__init__(conn, where)
        except (sqlite3.Error, RegistryError) as exc:
            if not self.path.is_file():
                raise exc if isinstance(exc, RegistryError) else self._failure_at(where, exc) from None
            self._open_read_only(where, busy_timeout, exc)

    def _open_read_only(self, where: str, busy_timeout: float, cause: Exception) -> None:
        """Reads (plan, list, show, history) need no write access: a registry file or directory
        that cannot be written is opened read-only, and only a write reports the problem. When
        SQLite cannot even create its WAL index beside the file, the file is read as immutable
        (nothing can write it from here either)."""
        for query in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?{query}", uri=True,
                                       timeout=busy_timeout, isolation_level=None)
                super().__init__(conn, where)
                return
            except (sqlite3.Error, RegistryError):
                continue
        raise cause if isinstance(cause, RegistryError) else self._failure_at(where, cause) from None

    @classmethod
    def from_config(cls, config: SqliteRegistryConfig, root: Path) -> "SqliteRegistry":
        return cls(config_path(config.path, root))

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        cur = self._conn.cursor()
        # IMMEDIATE takes the write lock now, so two commits never both read the same head.
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # some errors end the transaction themselves
                self._conn.execute("ROLLBACK")
            raise

    def _failure(self, exc: Exception) -> RegistryError | None:
        return self._failure_at(self.where, exc) if isinstance(exc, sqlite3.Error) else None

    @staticmethod
    def _failure_at(where: str, exc: Exception) -> RegistryError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            hint = "the file is corrupt or not a registry; restore it from a backup or move it away to start afresh"
        elif "locked" in text or "busy" in text:
            hint = "another featurectl process holds it; wait for it to finish and retry"
        elif "readonly" in text or "unable to open" in text:
            hint = "check that the file and its directory exist and are writable, or set registry.path in featurectl.yaml"
        else:
            hint = "check the file, its directory permissions and free disk space"
        return RegistryError(f"{where} failed: {text}; {hint}")
