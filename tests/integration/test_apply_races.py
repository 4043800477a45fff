"""Concurrent `featurectl apply` runs from real processes, on SQLite and on PostgreSQL.

Each round forks two fresh CLI processes from a zygote that has already imported featurectl;
they wait for a start file, and creating it releases both at once, so the applies really
overlap. Each runs the real entry point `featurectl.cli.main:main` with a normal argv, in its
own working tree, against a shared registry (PostgreSQL via `${FEATURECTL_TEST_DSN}` in the
config, which also exercises environment expansion).

(a) two saved plans made at the same revision: exactly one applies, the other is STALE_PLAN.
(b) two plain applies from two working trees that bump the same view from the same version to
    the same new version with different content: exactly one applies, the other is refused by
    the rules after its retry re-plans against the new head; the registry holds exactly one of
    the two desired states, never a mix.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
import yaml

from featurectl.app import saved_plan
from featurectl.app.planning import plan_against_registry
from featurectl.core.definitions import Definitions
from featurectl.loading.repo import Repo
from featurectl.registry import create_registry
from tests.fixtures.repos import cli_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("races")]

ROUNDS = 20
TIMEOUT_S = 60
PROJECT = "races"

# A zygote: imports featurectl once, then for each round forks one child per racer. Each child
# is a fresh process that waits for the start file and runs the real CLI entry point, so both
# applies start together and no round pays Python's start-up and import time twice over.
ZYGOTE = """
import json, os, sys, time
from featurectl.cli import main as cli
import featurectl.sdk, featurectl.cli.planning, featurectl.registry.sqlite, featurectl.registry.postgres

def racer(job, start):
    for fd, path in ((1, job["out"]), (2, job["err"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    os.chdir(job["cwd"])
    open(job["ready"], "w").close()
    deadline = time.monotonic() + TIMEOUT_S
    while not os.path.exists(start):
        if time.monotonic() > deadline:
            os._exit(99)
        time.sleep(0.001)
    sys.argv = ["featurectl", *job["args"]]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

for line in sys.stdin:
    rnd = json.loads(line)
    pids = []
    for job in rnd["jobs"]:
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            racer(job, rnd["start"])
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    print(json.dumps(codes), flush=True)
""".replace("TIMEOUT_S", str(TIMEOUT_S))


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


class Racers:
    """Runs rounds of concurrent CLI commands through one zygote process."""

    def __init__(self, env: dict[str, str], workdir: Path):
        self.workdir = workdir
        self.zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE], env=cli_env(env), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        self.rounds = 0

    def race(self, commands: list[tuple[Path, list[str]]]) -> list[Outcome]:
        self.rounds += 1
        start = self.workdir / f"start{self.rounds}"
        jobs = [{"cwd": str(cwd), "args": args, **{k: str(self.workdir / f"r{self.rounds}_{i}.{k}")
                                                   for k in ("out", "err", "ready")}}
                for i, (cwd, args) in enumerate(commands)]
        self.zygote.stdin.write(json.dumps({"start": str(start), "jobs": jobs}) + "\n")
        self.zygote.stdin.flush()
        deadline = time.monotonic() + TIMEOUT_S
        while not all(Path(job["ready"]).exists() for job in jobs):  # every racer is waiting
            assert time.monotonic() < deadline and self.zygote.poll() is None, "a racer failed to start"
            time.sleep(0.002)
        start.touch()
        codes = json.loads(self.zygote.stdout.readline())
        return [Outcome(code, Path(job["out"]).read_text(), Path(job["err"]).read_text())
                for code, job in zip(codes, jobs)]

    def close(self) -> None:
        self.zygote.stdin.close()
        self.zygote.wait(TIMEOUT_S)


@pytest.fixture
def racers(registry_block, tmp_path: Path) -> Iterator[Racers]:
    workdir = tmp_path / "racers"
    workdir.mkdir()
    racers = Racers(registry_block[1], workdir)
    yield racers
    racers.close()


BASE_DEFINITIONS: dict[str, Any] = {
    "entities": [{"name": "driver", "join_key": "driver_id", "dtype": "int64"}],
    "sources": [{"name": "trips", "path": "data/trips.parquet", "timestamp_field": "event_timestamp"}],
    "feature_views": [{"name": "driver_stats", "version": "1.0.0", "entities": ["driver"], "source": "trips",
                       "owner": "rides-ml@example.com", "features": [{"name": "f0", "dtype": "int64"}]}],
}


@pytest.fixture(params=["sqlite", "postgres"])
def registry_block(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict]]:
    """(registry config line, extra environment) shared by every working tree of the test."""
    if request.param == "sqlite":
        yield f"registry: {{type: sqlite, path: {tmp_path / 'shared' / 'registry.db'}}}", {}
        return
    dsn = request.getfixturevalue("postgres_dsn")
    monkeypatch.setenv("FEATURECTL_TEST_DSN", dsn)  # for the registry this process reads
    yield 'registry: {type: postgres, dsn: "${FEATURECTL_TEST_DSN}"}', {"FEATURECTL_TEST_DSN": dsn}


def make_repo(path: Path, registry_line: str, definitions: dict[str, Any]) -> Path:
    (path / "features").mkdir(parents=True)
    (path / "featurectl.yaml").write_text(f"project: {PROJECT}\n{registry_line}\n")
    write_definitions(path, definitions)
    return path


def write_definitions(repo: Path, definitions: dict[str, Any]) -> None:
    (repo / "features" / "all.yaml").write_text(yaml.safe_dump(definitions, sort_keys=False))


def head(repo: Path) -> tuple[int, dict[str, Any]]:
    registry = create_registry(Repo.open(repo).config.registry, repo)
    try:
        snapshot = registry.read()
        return snapshot.revision, Definitions.from_dict(snapshot.definitions).to_dict()
    finally:
        registry.close()


def bumped(current: dict[str, Any], feature: str) -> dict[str, Any]:
    """current with a minor bump of driver_stats adding `feature` (a valid plan from current)."""
    desired = copy.deepcopy(current)
    view = desired["feature_views"][0]
    major, minor, _ = (int(p) for p in view["version"].split("."))
    view["version"] = f"{major}.{minor + 1}.0"
    view["features"].append({"name": feature, "dtype": "float64"})
    return desired


def canonical(definitions: dict[str, Any]) -> dict[str, Any]:
    return Definitions.from_dict(definitions).to_dict()


def history(repo: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "featurectl", "history", "--format", "json"], cwd=repo,
                          env=cli_env(env), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def describe(results: list[Outcome]) -> str:
    return "\n".join(f"exit {r.returncode}\n{r.stdout}\n{r.stderr}" for r in results)


def test_two_saved_plans_from_one_revision_exactly_one_applies(registry_block, racers: Racers, tmp_path: Path) -> None:
    registry_line, env = registry_block
    repo = make_repo(tmp_path / "repo", registry_line, BASE_DEFINITIONS)
    setup = subprocess.run([sys.executable, "-m", "featurectl", "apply"], cwd=repo, env=cli_env(env),
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert setup.returncode == 0, setup.stderr

    for rnd in range(ROUNDS):
        revision, current = head(repo)
        registry = create_registry(Repo.open(repo).config.registry, repo)
        try:
            for who in "ab":
                desired = Definitions.from_dict(bumped(current, f"{who}_{rnd}"))
                plan = plan_against_registry(PROJECT, registry, desired)
                assert plan.valid and plan.base.revision == revision
                (repo / f"{who}.json").write_text(saved_plan.dump(plan))
        finally:
            registry.close()

        results = racers.race([(repo, ["apply", "a.json"]), (repo, ["apply", "b.json"])])
        codes = sorted(r.returncode for r in results)
        assert codes == [0, 1], f"round {rnd}: {describe(results)}"
        loser = next(r for r in results if r.returncode == 1)
        assert "STALE_PLAN" in loser.stderr and "Traceback" not in loser.stderr, describe(results)
        new_revision, state = head(repo)
        assert new_revision == revision + 1
        winner = "a" if results[0].returncode == 0 else "b"
        assert state == canonical(bumped(current, f"{winner}_{rnd}"))

    revisions = history(repo, env)
    assert [r["revision"] for r in revisions] == list(range(1, ROUNDS + 2))


def test_two_conflicting_plain_applies_exactly_one_wins_whole(registry_block, racers: Racers, tmp_path: Path) -> None:
    registry_line, env = registry_block
    repos = [make_repo(tmp_path / who, registry_line, BASE_DEFINITIONS) for who in "ab"]
    setup = subprocess.run([sys.executable, "-m", "featurectl", "apply"], cwd=repos[0], env=cli_env(env),
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert setup.returncode == 0, setup.stderr

    for rnd in range(ROUNDS):
        revision, current = head(repos[0])
        desired = {}
        for who, repo in zip("ab", repos):
            desired[who] = bumped(current, f"{who}_{rnd}")  # same view, same new version, different content
            write_definitions(repo, desired[who])

        results = racers.race([(repo, ["apply"]) for repo in repos])
        codes = [r.returncode for r in results]
        assert sorted(codes) == [0, 1], f"round {rnd}: {describe(results)}"
        loser = results[codes.index(1)]
        assert "Traceback" not in loser.stderr and "nothing was applied" in loser.stderr, describe(results)
        new_revision, state = head(repos[0])
        assert new_revision == revision + 1, f"round {rnd}: {describe(results)}"
        matches = [who for who in "ab" if state == canonical(desired[who])]
        assert matches == ["ab"[codes.index(0)]], f"round {rnd}: registry holds neither desired state whole"

    revisions = history(repos[0], env)
    assert [r["revision"] for r in revisions] == list(range(1, ROUNDS + 2))
    stamps = [r["applied_at"] for r in revisions]
    assert stamps == sorted(stamps)
