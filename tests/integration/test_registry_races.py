"""Concurrent applies from real processes never lose an update, on every registry backend.

Workers are spawned once per test and race round after round, lined up by a Barrier, so the
cost of starting Python is paid a few times rather than once per round.
"""
from __future__ import annotations

import multiprocessing
import queue
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from featurectl.registry.config import PostgresRegistryConfig, SqliteRegistryConfig
from featurectl.registry import create_registry
from featurectl.registry.base import Commit, StaleRevision

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("registry_races")]

SPAWN = multiprocessing.get_context("spawn")
PAIR_ROUNDS = 25
WORKERS, COMMITS_EACH = 4, 8
TIMEOUT_S = 60


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Path]:
    if request.param == "sqlite":
        return SqliteRegistryConfig(path=str(tmp_path / "registry.db")), tmp_path
    dsn = request.getfixturevalue("postgres_dsn")
    return PostgresRegistryConfig(type="postgres", dsn=dsn, schema="reg_races"), tmp_path


def with_entity(defs: dict[str, list[dict[str, Any]]], name: str) -> dict[str, list[dict[str, Any]]]:
    entities = sorted([*defs.get("entities", []), {"name": name, "join_key": f"{name}_id"}], key=lambda e: e["name"])
    return {**defs, "entities": entities}


def make_commit(expected: int, defs: dict, who: str, step: int) -> Commit:
    return Commit(expected_revision=expected, definitions=defs, changes=[{"who": who, "step": step}],
                  actor=who, applied_at=datetime.now(timezone.utc))


def pair_worker(config: Any, root: Path, who: str, barrier: Any, results: Any) -> None:
    """Each round: wait for the other worker, then commit on top of the same expected revision."""
    registry = create_registry(config, root)
    try:
        for rnd in range(PAIR_ROUNDS):
            barrier.wait(TIMEOUT_S)
            try:
                revision = registry.commit(make_commit(rnd, with_entity({}, f"{who}_{rnd}"), who, rnd))
                results.put((who, rnd, "ok", revision))
            except StaleRevision as exc:
                results.put((who, rnd, "stale", (exc.expected, exc.actual)))
            except Exception as exc:  # reported to the test, which fails on it
                results.put((who, rnd, "error", repr(exc)))
    finally:
        registry.close()


def retry_worker(config: Any, root: Path, who: str, barrier: Any, results: Any) -> None:
    """Read, add my own entity, commit; on StaleRevision read again and retry."""
    registry = create_registry(config, root)
    landed, stale = [], 0
    try:
        barrier.wait(TIMEOUT_S)
        for step in range(COMMITS_EACH):
            while True:
                snapshot = registry.read()
                defs = with_entity(snapshot.definitions, f"{who}_{step}")
                try:
                    landed.append(registry.commit(make_commit(snapshot.revision, defs, who, step)))
                    break
                except StaleRevision:
                    stale += 1
        results.put((who, landed, stale))
    except Exception as exc:
        results.put((who, "error", repr(exc)))
    finally:
        registry.close()


def run_workers(target: Any, config: tuple[Any, Path], names: list[str], expected_results: int) -> list:
    barrier, results = SPAWN.Barrier(len(names)), SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*config, who, barrier, results)) for who in names]
    for proc in procs:
        proc.start()
    try:
        collected = [results.get(timeout=TIMEOUT_S) for _ in range(expected_results)]
    except queue.Empty:
        pytest.fail(f"workers stopped reporting; exit codes {[p.exitcode for p in procs]}")
    finally:
        for proc in procs:
            proc.join(TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return collected


def test_two_simultaneous_commits_on_one_revision_exactly_one_wins(config: tuple[Any, Path]) -> None:
    outcomes = run_workers(pair_worker, config, ["a", "b"], 2 * PAIR_ROUNDS)
    assert [o for o in outcomes if o[2] == "error"] == []
    winners = {}
    for rnd in range(PAIR_ROUNDS):
        this_round = sorted((o for o in outcomes if o[1] == rnd), key=lambda o: o[2])
        assert [o[2] for o in this_round] == ["ok", "stale"], this_round
        (winner, _, _, revision), (_, _, _, stale) = this_round
        assert revision == rnd + 1 and stale == (rnd, rnd + 1)
        winners[rnd] = winner

    registry = create_registry(*config)
    history = registry.history()
    assert [r.revision for r in history] == list(range(1, PAIR_ROUNDS + 1))
    assert [r.changes for r in history] == [[{"who": winners[r], "step": r}] for r in range(PAIR_ROUNDS)]
    last = PAIR_ROUNDS - 1
    assert registry.read().definitions["entities"] == [{"name": f"{winners[last]}_{last}",
                                                        "join_key": f"{winners[last]}_{last}_id"}]
    registry.close()


def test_read_commit_retry_loses_no_update(config: tuple[Any, Path]) -> None:
    names = [f"w{i}" for i in range(WORKERS)]
    reports = run_workers(retry_worker, config, names, WORKERS)
    assert [r for r in reports if r[1] == "error"] == []
    total = WORKERS * COMMITS_EACH
    landed = sorted(rev for _, revisions, _ in reports for rev in revisions)
    assert landed == list(range(1, total + 1))  # every commit once, no gaps, no duplicates
    for _, revisions, _ in reports:
        assert revisions == sorted(revisions)  # each worker's own commits land in order

    registry = create_registry(*config)
    snapshot = registry.read()
    assert snapshot.revision == total
    expected_names = sorted(f"{who}_{step}" for who in names for step in range(COMMITS_EACH))
    assert [e["name"] for e in snapshot.definitions["entities"]] == expected_names
    history = registry.history()
    assert [r.revision for r in history] == list(range(1, total + 1))
    assert sorted((r.changes[0]["who"], r.changes[0]["step"]) for r in history) == sorted(
        (who, step) for who in names for step in range(COMMITS_EACH)
    )
    for name in expected_names:  # each entity was added exactly once and never rewritten
        assert len(registry.versions("entity", name)) == 1
    registry.close()
