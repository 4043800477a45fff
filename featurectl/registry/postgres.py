"""The shared registry on PostgreSQL (psycopg 3); its tables live in one schema."""
from __future__ import annotations

import math
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict

from featurectl.core.sql import ident
from featurectl.core.times import as_utc
from featurectl.registry.config import PostgresRegistryConfig
from featurectl.core.errors import UsageError
from featurectl.core.secrets import mask_secrets, unencoded_url_problem
from featurectl.registry.base import RegistryError
from featurectl.registry.sql import SqlRegistry



def _one_line(exc: Exception) -> str:
    """A driver message on one line, passwords masked (libpq spreads errors over lines)."""
    return " ".join(mask_dsn(str(exc)).split())


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***, in URL and key=value forms."""
    return mask_secrets(dsn)


class PostgresRegistry(SqlRegistry):
    placeholder = "%s"
    timestamp_type = "TIMESTAMPTZ"
    # Commits lock the one head row: a second committer waits, then sees the new head.
    lock_head = " FOR UPDATE"

    def __init__(self, dsn: str, schema: str = "featurectl", connect_timeout: float = 5.0, timeout: float = 10.0):
        self.schema = schema
        self._masked = mask_dsn(dsn)
        where = f"the PostgreSQL registry {self._masked} (schema {schema})"
        problem = unencoded_url_problem(dsn)
        if problem:
            raise UsageError(f"registry.dsn {self._masked} in featurectl.yaml cannot be parsed: {problem}")
        try:
            params: dict[str, Any] = conninfo_to_dict(dsn)
            # libpq takes whole seconds (2 at least); the statement timeout bounds every query.
            params.setdefault("connect_timeout", max(2, math.ceil(connect_timeout)))
            limit = f"-c statement_timeout={int(timeout * 1000)}"
            params["options"] = f"{params['options']} {limit}" if params.get("options") else limit
            conn = psycopg.connect(autocommit=True, **params)
        except psycopg.ProgrammingError as exc:  # the DSN does not parse: bad config, exit 2
            raise UsageError(
                f"invalid PostgreSQL DSN {self._masked}: {_one_line(exc)}",
                hint="write registry.dsn in featurectl.yaml as postgresql://USER@HOST:PORT/DB or 'host=... dbname=...'"
            ) from None
        except psycopg.Error as exc:
            raise RegistryError(
                f"cannot connect to {where}: {_one_line(exc)}; check that the server is "
                "running and reachable, and that registry.dsn in featurectl.yaml is right"
            ) from None
        super().__init__(conn, where, prefix=f"{ident(schema)}.")

    @classmethod
    def from_config(cls, config: PostgresRegistryConfig, root: Path) -> "PostgresRegistry":
        return cls(config.dsn, config.schema_name, connect_timeout=config.connect_timeout, timeout=config.timeout)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def _create_container(self, cur: Any) -> None:
        # Serialise first-time setup: concurrent CREATE ... IF NOT EXISTS can still collide.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"featurectl.registry.{self.schema}",))
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(self.schema)}")

    def _time_in(self, moment: datetime) -> Any:
        return as_utc(moment)

    def _failure(self, exc: Exception) -> RegistryError | None:
        if not isinstance(exc, psycopg.Error):
            return None
        text = _one_line(exc)
        if isinstance(exc, psycopg.errors.QueryCanceled):
            hint = "a statement ran past registry.timeout (seconds); check the server's load, or raise it in featurectl.yaml"
        elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
            hint = f"grant the user CREATE and USAGE on schema {self.schema} (or on the database)"
        elif isinstance(exc, psycopg.OperationalError):
            hint = "check that the server is running and reachable, then retry"
        else:
            hint = "check the server log; the registry schema may have been altered by hand"
        return RegistryError(f"{self.where} failed: {text}; {hint}")
