"""What the SQLite and PostgreSQL registries share: the schema, the statements and the commit.

A backend subclass supplies the dialect: its placeholder, its table prefix, how it opens a
locked write transaction, how it stores timestamps, and how its driver errors read.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterator

from featurectl.core.model import KINDS, PLURAL
from featurectl.core.times import as_utc
from featurectl.registry.base import (
    SCHEMA_VERSION,
    Commit,
    ObjectVersion,
    RegistryError,
    Revision,
    Snapshot,
    StaleRevision,
)

KIND_OF = {plural: kind for kind, plural in PLURAL.items()}

# {t} is the table prefix (a quoted schema on PostgreSQL), {ts} the timestamp column type.
TABLES = [
    "CREATE TABLE {t}head (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL)",
    "CREATE TABLE {t}revisions (revision INTEGER PRIMARY KEY, applied_at {ts} NOT NULL,"
    " actor TEXT NOT NULL, git_commit TEXT, changes TEXT NOT NULL)",
    # The current state; digest is the hash of the canonical JSON, so a commit can tell
    # what changed without parsing every applied definition.
    "CREATE TABLE {t}objects (kind TEXT NOT NULL, name TEXT NOT NULL, version TEXT,"
    " definition TEXT NOT NULL, digest TEXT NOT NULL, revision INTEGER NOT NULL,"
    " PRIMARY KEY (kind, name))",
    # Every version of every object; a NULL definition marks a removal.
    "CREATE TABLE {t}object_versions (kind TEXT NOT NULL, name TEXT NOT NULL,"
    " revision INTEGER NOT NULL, version TEXT, definition TEXT, PRIMARY KEY (kind, name, revision))",
    # Which objects each revision touched, keyed by name first to answer history(name).
    "CREATE TABLE {t}revision_objects (name TEXT NOT NULL, kind TEXT NOT NULL,"
    " revision INTEGER NOT NULL, PRIMARY KEY (name, kind, revision))",
    "INSERT INTO {t}head (id, revision) VALUES (1, 0)",
]

Upgrade = Callable[["SqlRegistry", Any], None]


def _drop_watermarks(registry: "SqlRegistry", cur: Any) -> None:
    """1 -> 2: watermarks moved into the online store they describe (SPEC §7). The old ones
    named no online store, so they are dropped, not carried over: the next
    materialize-incremental fills each online store from its views' ttl before END."""
    cur.execute(registry._sql("DROP TABLE IF EXISTS {t}watermarks"))


# UPGRADES[n] migrates a registry from schema version n to n + 1 inside the setup
# transaction (it gets the registry and the cursor).
UPGRADES: dict[int, Upgrade] = {1: _drop_watermarks}


def encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def digest(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class SqlRegistry:
    """The Registry port over a DB-API connection; subclasses set the dialect."""

    placeholder = "?"
    timestamp_type = "TEXT"
    lock_head = ""  # appended to the head query inside a commit

    def __init__(self, conn: Any, where: str, prefix: str = ""):
        self._conn = conn
        self.where = where  # the path or masked DSN, for error messages
        self._prefix = prefix
        self._statements: dict[str, str] = {}
        with self._failures():
            self._setup()

    # -- dialect hooks ---------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A write transaction that holds the registry's write lock; yields a cursor."""
        raise NotImplementedError

    def _create_container(self, cur: Any) -> None:
        """Create what the tables live in (a PostgreSQL schema); nothing on SQLite."""

    def _time_in(self, moment: datetime) -> Any:
        return as_utc(moment).isoformat(timespec="microseconds")

    def _time_out(self, value: Any) -> datetime:
        return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)

    def _failure(self, exc: Exception) -> RegistryError | None:
        """The RegistryError for a driver exception, or None when it is not one."""
        raise NotImplementedError

    # -- plumbing --------------------------------------------------------------------
    def _sql(self, template: str) -> str:
        text = self._statements.get(template)
        if text is None:
            text = template.format(t=self._prefix, ts=self.timestamp_type).replace("?", self.placeholder)
            self._statements[template] = text
        return text

    def _query(self, template: str, params: tuple = ()) -> list[tuple]:
        with self._failures():
            return self._conn.execute(self._sql(template), params).fetchall()

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except (RegistryError, StaleRevision):
            raise
        except Exception as exc:
            error = self._failure(exc)
            if error is None:
                raise
            raise error from exc

    def _setup(self) -> None:
        try:  # the common case, without taking the write lock: already at our version
            if self.schema_version() == SCHEMA_VERSION:
                return
        except Exception:  # no meta table yet, or unreadable: the locked path below decides
            pass
        with self._transaction() as cur:
            self._create_container(cur)
            cur.execute(self._sql("CREATE TABLE IF NOT EXISTS {t}meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"))
            cur.execute(self._sql("SELECT value FROM {t}meta WHERE key = 'schema_version'"))
            row = cur.fetchone()
            if row is None:
                for statement in TABLES:
                    cur.execute(self._sql(statement))
                cur.execute(self._sql("INSERT INTO {t}meta (key, value) VALUES ('schema_version', ?)"),
                            (str(SCHEMA_VERSION),))
                return
            found = int(row[0])
            if found > SCHEMA_VERSION:
                raise RegistryError(
                    f"{self.where} has schema version {found}, newer than this "
                    f"featurectl understands ({SCHEMA_VERSION}); upgrade featurectl "
                    "(pip install -U featurectl) to use it"
                )
            for version in range(found, SCHEMA_VERSION):
                upgrade = UPGRADES.get(version)
                if upgrade is None:
                    raise RegistryError(
                        f"{self.where} has schema version {version} and featurectl has "
                        f"no upgrade from it to {version + 1}; re-create the registry or use the "
                        "featurectl release that wrote it"
                    )
                upgrade(self, cur)
            cur.execute(self._sql("UPDATE {t}meta SET value = ? WHERE key = 'schema_version'"),
                        (str(SCHEMA_VERSION),))

    def _load(self, text: str, what: str) -> Any:
        """One stored JSON document; a corrupt one names the registry and the object."""
        try:
            return json.loads(text)
        except (TypeError, ValueError) as exc:
            raise RegistryError(
                f"{self.where}: the stored {what} is not valid JSON ({exc}); the registry was altered "
                "outside featurectl: restore it from a backup, or re-apply after removing that row") from None

    # -- the port --------------------------------------------------------------------
    def schema_version(self) -> int:
        return int(self._query("SELECT value FROM {t}meta WHERE key = 'schema_version'")[0][0])

    def read(self) -> Snapshot:
        # One statement, so the head and the objects come from the same snapshot.
        rows = self._query(
            "SELECT h.revision, o.kind, o.name, o.definition FROM {t}head h LEFT JOIN {t}objects o ON 1 = 1"
        )
        by_kind: dict[str, list[tuple[str, str]]] = {kind: [] for kind in KINDS}
        for _, kind, name, definition in rows:
            if kind is not None:
                by_kind[kind].append((name, definition))
        definitions = {
            PLURAL[kind]: [self._load(text, f"{kind} '{name}'") for name, text in sorted(objects)]
            for kind, objects in by_kind.items()
        }
        return Snapshot(revision=rows[0][0], definitions=definitions)

    def commit(self, commit: Commit) -> int:
        desired = self._encode_desired(commit.definitions)
        changes = encode(commit.changes)
        with self._failures(), self._transaction() as cur:
            cur.execute(self._sql("SELECT revision FROM {t}head WHERE id = 1" + self.lock_head))
            actual = cur.fetchone()[0]
            if actual != commit.expected_revision:
                raise StaleRevision(commit.expected_revision, actual)
            revision = actual + 1
            cur.execute(self._sql("UPDATE {t}head SET revision = ? WHERE id = 1"), (revision,))
            cur.execute(
                self._sql("INSERT INTO {t}revisions (revision, applied_at, actor, git_commit, changes)"
                          " VALUES (?, ?, ?, ?, ?)"),
                (revision, self._time_in(commit.applied_at), commit.actor, commit.git_commit, changes),
            )
            touched = self._replace_objects(cur, desired, revision)
            self._record_versions(cur, touched, revision)
        return revision

    def _encode_desired(self, definitions: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], tuple]:
        """(kind, name) -> (version, definition JSON, digest); refuses unknown kinds and duplicates."""
        desired: dict[tuple[str, str], tuple] = {}
        for plural, objects in definitions.items():
            kind = KIND_OF.get(plural)
            if kind is None:
                raise ValueError(f"unknown kind '{plural}' in definitions; expected one of {', '.join(KIND_OF)}")
            for definition in objects:
                key = (kind, definition["name"])
                if key in desired:
                    raise ValueError(f"{kind} '{key[1]}' appears twice in the definitions to commit")
                desired[key] = (definition.get("version"), encode(definition), digest(definition))
        return desired

    def _replace_objects(self, cur: Any, desired: dict[tuple[str, str], tuple], revision: int) -> dict:
        """Make the objects table equal `desired`; return what changed: key -> (version, JSON or None)."""
        cur.execute(self._sql("SELECT kind, name, digest FROM {t}objects"))
        current = {(kind, name): dig for kind, name, dig in cur.fetchall()}
        removed = [key for key in current if key not in desired]
        added = [key for key in desired if key not in current]
        updated = [key for key in desired if key in current and current[key] != desired[key][2]]
        if removed:
            cur.executemany(self._sql("DELETE FROM {t}objects WHERE kind = ? AND name = ?"), removed)
        if added:
            cur.executemany(
                self._sql("INSERT INTO {t}objects (kind, name, version, definition, digest, revision)"
                          " VALUES (?, ?, ?, ?, ?, ?)"),
                [(*key, *desired[key], revision) for key in added],
            )
        if updated:
            cur.executemany(
                self._sql("UPDATE {t}objects SET version = ?, definition = ?, digest = ?, revision = ?"
                          " WHERE kind = ? AND name = ?"),
                [(*desired[key], revision, *key) for key in updated],
            )
        touched = {key: (None, None) for key in removed}
        touched.update({key: desired[key][:2] for key in added + updated})
        return touched

    def _record_versions(self, cur: Any, touched: dict, revision: int) -> None:
        if not touched:
            return
        cur.executemany(
            self._sql("INSERT INTO {t}object_versions (kind, name, revision, version, definition)"
                      " VALUES (?, ?, ?, ?, ?)"),
            [(kind, name, revision, version, text) for (kind, name), (version, text) in touched.items()],
        )
        cur.executemany(
            self._sql("INSERT INTO {t}revision_objects (name, kind, revision) VALUES (?, ?, ?)"),
            [(name, kind, revision) for kind, name in touched],
        )

    def history(self, name: str | None = None) -> list[Revision]:
        select = "SELECT revision, applied_at, actor, git_commit, changes FROM {t}revisions"
        if name is None:
            rows = self._query(select + " ORDER BY revision")
        else:
            rows = self._query(
                select + " WHERE revision IN (SELECT revision FROM {t}revision_objects WHERE name = ?)"
                " ORDER BY revision",
                (name,),
            )
        return [
            Revision(revision=rev, applied_at=self._time_out(at), actor=actor, git_commit=git,
                     changes=self._load(changes, f"the changes of revision {rev}"))
            for rev, at, actor, git, changes in rows
        ]

    def versions(self, kind: str, name: str) -> list[ObjectVersion]:
        if kind not in PLURAL:
            raise ValueError(f"unknown kind '{kind}'; expected one of {', '.join(KINDS)}")
        rows = self._query(
            "SELECT revision, version, definition FROM {t}object_versions WHERE kind = ? AND name = ?"
            " ORDER BY revision",
            (kind, name),
        )
        return [
            ObjectVersion(kind=kind, name=name, version=version, revision=rev,
                          definition=None if text is None else self._load(text, f"{kind} '{name}' at revision {rev}"))
            for rev, version, text in rows
        ]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "SqlRegistry":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
