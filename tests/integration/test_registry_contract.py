"""The Registry contract, run against every backend (SQLite file, PostgreSQL schema)."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import psycopg
import pytest

from featurectl.registry.config import PostgresRegistryConfig, SqliteRegistryConfig
from featurectl.core.errors import UsageError
from featurectl.registry import create_registry, sql
from featurectl.registry.base import SCHEMA_VERSION, Commit, Registry, RegistryError, StaleRevision

T0 = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)
EMPTY = {"entities": [], "sources": [], "feature_views": [], "feature_services": []}


@dataclass
class Store:
    """One backend's store: open registries on it, and poke its tables behind the port's back."""

    open: Callable[[], Registry]
    raw: Callable[[str, tuple], list[tuple]]  # SQL with {t} table prefix and ? placeholders


def sqlite_store(tmp_path: Path) -> Store:
    config = SqliteRegistryConfig(path="state/registry.db")  # relative: resolved against the root

    def raw(statement: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(tmp_path / "state" / "registry.db") as conn:
            return conn.execute(statement.format(t=""), params).fetchall()

    return Store(lambda: create_registry(config, tmp_path), raw)


def postgres_store(dsn: str) -> Store:
    config = PostgresRegistryConfig(type="postgres", dsn=dsn, schema="reg_contract")

    def raw(statement: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(statement.format(t="reg_contract.").replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []

    return Store(lambda: create_registry(config, Path("/nonexistent")), raw)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return sqlite_store(tmp_path)
    return postgres_store(request.getfixturevalue("postgres_dsn"))


@pytest.fixture
def registry(store: Store):
    reg = store.open()
    yield reg
    reg.close()


def view(name: str, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {
        "name": name, "version": version, "entities": ["driver"], "source": "trips", "owner": "ml@x.io",
        "features": [
            {"name": "trips_today", "dtype": "int64"},
            {"name": "rating", "dtype": "float64", "nullable": False, "default": 4.5,
             "constraints": {"min": 0.0, "max": 5.0}},
        ],
        "ttl": "1d", **extra,
    }


def definitions(*views: dict[str, Any], services: tuple = ()) -> dict[str, list[dict[str, Any]]]:
    return {
        "entities": [{"name": "driver", "join_key": "driver_id", "description": "a driver — ünïcode"}],
        "sources": [{"name": "trips", "timestamp_field": "ts", "path": "data/trips.parquet"}],
        "feature_views": sorted(views, key=lambda v: v["name"]),
        "feature_services": list(services),
    }


def commit(reg: Registry, expected: int, defs: dict, changes: list | None = None, **kw: Any) -> int:
    return reg.commit(Commit(
        expected_revision=expected, definitions=defs, changes=changes or [], actor=kw.get("actor", "ann"),
        applied_at=kw.get("applied_at", T0), git_commit=kw.get("git_commit"),
    ))


def test_empty_registry_reads_as_revision_zero(registry: Registry) -> None:
    snapshot = registry.read()
    assert snapshot.revision == 0
    assert snapshot.definitions == EMPTY
    assert registry.history() == []
    assert registry.versions("feature_view", "driver_stats") == []


def test_commit_then_read_round_trips_exactly(store: Store, registry: Registry) -> None:
    defs = definitions(
        view("driver_stats", tags={"a": "1", "team": "rides"}, description="multi\nline"),
        view("a_first", "0.1.0", online=False),
        services=({"name": "svc", "version": "2.0.0", "owner": "o", "features": ["driver_stats:*"]},),
    )
    assert commit(registry, 0, defs) == 1
    expected = {**EMPTY, **defs}
    for reg in (registry, store.open()):  # the same process, and a fresh connection
        snapshot = reg.read()
        assert snapshot.revision == 1
        # Exact: same objects, same order of objects and of keys, floats and unicode intact.
        assert json.dumps(snapshot.definitions) == json.dumps(expected)


def test_revisions_strictly_increase_and_history_keeps_each_commit(registry: Registry) -> None:
    for i in range(5):
        assert commit(registry, i, definitions(view("v", f"1.{i}.0")), changes=[{"i": i}],
                      applied_at=T0 + timedelta(microseconds=i), git_commit=f"abc{i}") == i + 1
    history = registry.history()
    assert [r.revision for r in history] == [1, 2, 3, 4, 5]
    assert [r.changes for r in history] == [[{"i": i}] for i in range(5)]
    assert [r.git_commit for r in history] == [f"abc{i}" for i in range(5)]
    assert [r.applied_at for r in history] == [T0 + timedelta(microseconds=i) for i in range(5)]
    assert all(r.applied_at.tzinfo == timezone.utc and r.actor == "ann" for r in history)


def test_wrong_expected_revision_is_stale_and_writes_nothing(registry: Registry) -> None:
    commit(registry, 0, definitions(view("v")))
    before = (registry.read(), registry.history(), registry.versions("feature_view", "v"))
    for expected in (0, 2, 7):
        with pytest.raises(StaleRevision) as info:
            commit(registry, expected, definitions(view("v", "2.0.0"), view("w")))
        assert (info.value.expected, info.value.actual) == (expected, 1)
    assert (registry.read(), registry.history(), registry.versions("feature_view", "v")) == before
    assert commit(registry, 1, definitions(view("v", "2.0.0"))) == 2


def test_history_by_name_lists_only_revisions_that_touched_it(registry: Registry) -> None:
    commit(registry, 0, definitions(view("v1")))                                   # 1: adds all
    commit(registry, 1, definitions(view("v1", "1.1.0")))                         # 2: updates v1
    commit(registry, 2, definitions(view("v1", "1.1.0"), view("v2")))             # 3: adds v2
    commit(registry, 3, definitions(view("v2")))                                  # 4: removes v1
    commit(registry, 4, definitions(view("v2")), changes=[{"note": "no-op"}])     # 5: touches nothing
    assert [r.revision for r in registry.history()] == [1, 2, 3, 4, 5]
    assert [r.revision for r in registry.history("v1")] == [1, 2, 4]
    assert [r.revision for r in registry.history("v2")] == [3]
    assert [r.revision for r in registry.history("driver")] == [1]
    assert registry.history("nothing_by_that_name") == []


def test_versions_follow_add_update_remove_and_readd(registry: Registry) -> None:
    v1, v2 = view("v", "1.0.0"), view("v", "1.1.0", description="more")
    commit(registry, 0, definitions(v1))
    commit(registry, 1, definitions(v2))
    commit(registry, 2, definitions(v2))  # unchanged: no new version
    commit(registry, 3, definitions())
    commit(registry, 4, definitions(v1))
    got = [(o.revision, o.version, o.definition) for o in registry.versions("feature_view", "v")]
    assert got == [(1, "1.0.0", v1), (2, "1.1.0", v2), (4, None, None), (5, "1.0.0", v1)]
    assert {o.kind for o in registry.versions("feature_view", "v")} == {"feature_view"}
    assert [(o.revision, o.version) for o in registry.versions("entity", "driver")] == [(1, None)]
    assert registry.versions("feature_service", "v") == []


def test_key_order_alone_is_not_a_change(registry: Registry) -> None:
    commit(registry, 0, definitions(view("v")))
    reordered = dict(reversed(list(view("v").items())))
    commit(registry, 1, definitions(reordered))
    assert [o.revision for o in registry.versions("feature_view", "v")] == [1]


def test_schema_version_is_recorded(store: Store, registry: Registry) -> None:
    assert store.raw("SELECT value FROM {t}meta WHERE key = 'schema_version'", ()) == [(str(SCHEMA_VERSION),)]


def test_newer_schema_version_is_refused(store: Store, registry: Registry) -> None:
    store.raw("UPDATE {t}meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(RegistryError, match=rf"schema version {SCHEMA_VERSION + 1}, newer .* upgrade featurectl") as info:
        store.open()
    assert registry.where in str(info.value)


def test_older_schema_version_goes_through_the_upgrade_table(
    store: Store, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(registry, 0, definitions(view("v")))
    store.raw("UPDATE {t}meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION - 1),))
    monkeypatch.delitem(sql.UPGRADES, SCHEMA_VERSION - 1)
    with pytest.raises(RegistryError, match=f"no upgrade from it to {SCHEMA_VERSION}"):
        store.open()

    calls = []

    def upgrade(reg: Any, cur: Any) -> None:
        calls.append(reg.where)
        cur.execute(reg._sql("CREATE TABLE {t}upgraded_marker (x INTEGER)"))

    monkeypatch.setitem(sql.UPGRADES, SCHEMA_VERSION - 1, upgrade)
    upgraded = store.open()
    assert calls == [registry.where]
    assert store.raw("SELECT value FROM {t}meta WHERE key = 'schema_version'", ()) == [(str(SCHEMA_VERSION),)]
    assert store.raw("SELECT count(*) FROM {t}upgraded_marker", ()) == [(0,)]
    assert upgraded.read().revision == 1
    store.open().close()
    assert len(calls) == 1  # already current: not upgraded twice


def test_a_version_1_registry_drops_its_watermarks_and_keeps_everything_else(store: Store, registry: Registry) -> None:
    """Schema 1 kept watermarks in the registry, tied to no online store; 2 keeps them in the
    online store (SPEC §7), so the upgrade drops the old table."""
    commit(registry, 0, definitions(view("v")))
    store.raw("CREATE TABLE {t}watermarks (view TEXT NOT NULL, major INTEGER NOT NULL,"
              " watermark TEXT NOT NULL, PRIMARY KEY (view, major))", ())
    store.raw("INSERT INTO {t}watermarks VALUES ('v', 1, '2024-01-01T00:00:00+00:00')", ())
    store.raw("UPDATE {t}meta SET value = '1' WHERE key = 'schema_version'", ())
    upgraded = store.open()
    assert store.raw("SELECT value FROM {t}meta WHERE key = 'schema_version'", ()) == [("2",)]
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.UndefinedTable)):  # the table is gone
        store.raw("SELECT * FROM {t}watermarks", ())
    assert upgraded.read() == registry.read() and upgraded.read().revision == 1
    upgraded.close()


def test_failed_commit_leaves_the_registry_exactly_as_before(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(registry, 0, definitions(view("v"), view("gone")), changes=[{"first": True}])

    def state() -> tuple:
        return (registry.read(), registry.history(), registry.history("w"),
                registry.versions("feature_view", "v"), registry.versions("feature_view", "gone"))

    before = state()
    with pytest.raises(TypeError):
        commit(registry, 1, definitions(view("v", "2.0.0", tags={"bad": object()})))
    with pytest.raises(ValueError):
        commit(registry, 1, definitions(view("w"), view("w")))

    # Fail after the head, the revision row and the objects were already written.
    def explode(*args: Any) -> None:
        raise RuntimeError("forced failure midway")

    monkeypatch.setattr(sql.SqlRegistry, "_record_versions", explode)
    with pytest.raises(RuntimeError, match="forced failure midway"):
        commit(registry, 1, definitions(view("v", "2.0.0"), view("w")))
    monkeypatch.undo()

    assert state() == before
    assert commit(registry, 1, definitions(view("v", "2.0.0"), view("w"))) == 2  # no gap left behind


def test_removing_everything_empties_the_state(registry: Registry) -> None:
    commit(registry, 0, definitions(view("v")))
    assert commit(registry, 1, EMPTY) == 2
    assert registry.read().definitions == EMPTY
    assert registry.versions("entity", "driver")[-1].definition is None


def test_unknown_kind_is_refused(registry: Registry) -> None:
    with pytest.raises(ValueError, match="unknown kind 'views'"):
        commit(registry, 0, {"views": [view("v")]})
    with pytest.raises(ValueError, match="unknown kind 'views'"):
        registry.versions("views", "v")
    assert registry.read().revision == 0


# -- failures that name the store and the fix ---------------------------------------------

def test_sqlite_corrupt_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    path.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(RegistryError, match="corrupt") as info:
        create_registry(SqliteRegistryConfig(path=str(path)), tmp_path)
    assert str(path) in str(info.value)


def test_sqlite_unwritable_path_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a directory")
    with pytest.raises(RegistryError, match="registry.path in featurectl.yaml") as info:
        create_registry(SqliteRegistryConfig(path="a_file/sub/registry.db"), tmp_path)
    assert str(tmp_path / "a_file" / "sub" / "registry.db") in str(info.value)


def test_sqlite_registry_directory_is_created(tmp_path: Path) -> None:
    create_registry(SqliteRegistryConfig(path="deep/er/reg.db"), tmp_path).close()
    assert (tmp_path / "deep" / "er" / "reg.db").is_file()


def test_postgres_unreachable_names_the_masked_dsn() -> None:
    dsn = "postgresql://someone:s3cret@127.0.0.1:1/registry"
    with pytest.raises(RegistryError, match="registry.dsn in featurectl.yaml") as info:
        create_registry(PostgresRegistryConfig(type="postgres", dsn=dsn), Path("."))
    message = str(info.value)
    assert "postgresql://someone:***@127.0.0.1:1/registry" in message and "s3cret" not in message


def test_postgres_bad_dsn_is_explained() -> None:
    with pytest.raises(UsageError, match="invalid PostgreSQL DSN") as info:  # bad config: exit 2
        create_registry(PostgresRegistryConfig(type="postgres", dsn="host=x password=hunter2 nonsense"), Path("."))
    assert "hunter2" not in str(info.value)
