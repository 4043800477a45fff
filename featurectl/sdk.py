"""The Python SDK. The CLI is a thin layer over this class."""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, cast

from featurectl.app.timeparse import to_utc
from featurectl.core.definitions import Definitions
from featurectl.core.errors import DefinitionError, UsageError
from featurectl.core.model import QuerySource
from featurectl.loading.repo import Repo

if TYPE_CHECKING:
    import pyarrow as pa

    from featurectl.app.planning import ApplyResult
    from featurectl.core.plan import Plan

    from featurectl.app.materialize import OnlineStatus, Progress, ViewRun
    from featurectl.app.freshness import FreshnessResult
    from featurectl.app.monitoring import DriftResult, Sources
    from featurectl.app.prune import OldMajor
    from featurectl.app.reads import AppliedObject, ObjectDetail
    from featurectl.app.retrieval import OnlineReader, OnlineResult
    from featurectl.core.catalog import Catalog
    from featurectl.core.lineage import Graph

    from featurectl.offline.base import OfflineStore
    from featurectl.online.base import OnlineStore
    from featurectl.registry.base import Registry, Revision


class _OnFirstUse:
    """Stands for the object `make()` returns, made on first attribute access."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._target: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._target is None:
            self._target = self._make()
        return getattr(self._target, name)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class FeatureStore:
    """A feature repository and its stores. Stores are opened on first use."""

    serving_cache_seconds = 5.0

    def __init__(self, repo_path: str | Path | None = None, *, clock: Callable[[], datetime] = _utc_now,
                 actor: str | None = None):
        self.repo = Repo.open(repo_path)
        self.project = self.repo.config.project
        self._clock = clock
        self._actor = actor
        self._serving: tuple[float, OnlineReader] | None = None

    # --- stores (lazy: plan and validate never import the data stack) ---------------------
    @cached_property
    def registry(self) -> "Registry":
        from featurectl.registry import create_registry
        return create_registry(self.repo.store_config("registry"), self.repo.root)

    @cached_property
    def offline(self) -> "OfflineStore":
        from featurectl.offline import create_offline_store
        return create_offline_store(self.repo.store_config("offline_store"), self.repo.root)

    @cached_property
    def online(self) -> "OnlineStore":
        from featurectl.online import create_online_store
        return create_online_store(self.repo.store_config("online_store"), self.repo.root)

    def store_description(self, block: str) -> str:
        """`type:where` of one store block (`registry`, `online_store`, ...), passwords masked."""
        from featurectl.registry.postgres import mask_dsn

        data = self.repo.store_config(block).model_dump()
        nodes = data.get("nodes")  # a Redis Cluster named by its nodes
        where = ",".join(nodes) if nodes else data.get("url") or data.get("dsn") or data.get("path") or ""
        return f"{data.get('type')}:{mask_dsn(str(where))}"

    def close(self) -> None:
        for name in ("registry", "offline", "online"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- definitions ----------------------------------------------------------------------
    @property
    def definitions(self) -> Definitions:
        """The definitions in the repository's files (the desired state)."""
        return self.repo.definitions

    def applied(self) -> Definitions:
        """The definitions the registry holds (the current state), read now."""
        from featurectl.app.features import current_definitions
        return current_definitions(self.registry)[1]

    # --- registry reads (result objects: render/registry.py shapes them) ------------------
    def list_objects(self, kind: str | None = None) -> "list[AppliedObject]":
        """The applied objects, by kind then name; `kind` as a user writes it (`views`, `feature-views`)."""
        from featurectl.app import reads
        wanted = reads.parse_kind(kind) if kind else None
        return reads.list_objects(self.applied(), wanted)

    def show(self, name: str, *, version: str | None = None) -> "ObjectDetail":
        """One applied (or removed) object's definition, at `version` or its last, and its versions."""
        from featurectl.app import reads
        return reads.show_object(self.registry, self.applied(), name, version)

    def history(self, name: str | None = None) -> "list[Revision]":
        """The registry's revisions oldest first; with a name, those that changed that object."""
        from featurectl.app import reads
        return reads.history(self.registry, name)

    def lineage(self, *, from_files: bool = False) -> "Graph":
        """The lineage graph of the applied definitions (or, with from_files, of the files)."""
        from featurectl.core.lineage import lineage_graph
        return lineage_graph(self.definitions if from_files else self.applied())

    def catalog(self) -> "Catalog":
        """What `featurectl docs` shows: applied definitions, removals, history, lineage, and the
        newest event time per online view (a note instead when the online store cannot be read)."""
        from featurectl.app.catalog import collect_catalog
        return collect_catalog(self.project, self.registry, lambda: self.online, self._clock())

    def _online_reader(self) -> "OnlineReader":
        """Online reads use the applied definitions as read at most `serving_cache_seconds` ago:
        reading and validating the registry on every call would cost more than the read itself.
        An apply through this instance refreshes them at once."""
        from featurectl.app.retrieval import build_reader

        if self._serving is None or time.monotonic() - self._serving[0] > self.serving_cache_seconds:
            current = self._serving[1] if self._serving else None
            self._serving = (time.monotonic(), build_reader(self.project, self.registry, self.online, current))
        return self._serving[1]

    def validate(self) -> Definitions:
        """The definitions, checked as `validate` does: files, references, and query sources
        with DuckDB's parser (one read-only SELECT). `plan` skips that check so that it never
        imports the data stack; validate imports duckdb (only) when there is a query source.
        A query for another engine (Spark SQL) is that engine's to judge, at `apply` and when
        it runs: validate starts no JVM (docs/spark.md)."""
        from featurectl.loading.files import load_definitions

        defs, origins = load_definitions(self.repo.root, self.repo.config.definitions)
        duckdb_sql = self.repo.config.offline_store.type == "duckdb"
        if duckdb_sql and any(isinstance(source, QuerySource) for source in defs.sources.values()):
            from featurectl.offline.query_check import check_query_sources  # duckdb only: no pyarrow
            check_query_sources(defs, origins)
        return defs

    def plan(self, *, allow_removals: bool = False, against: str | None = None) -> Plan:
        from featurectl.app import planning  # plans and applies only: reads need none of it
        desired = self.definitions  # bad files are exit 2 before any store is opened (or created)
        if against is not None:
            from featurectl.loading.git import definitions_at_ref
            base, _ = definitions_at_ref(self.repo.root, against)
            return planning.plan_against_git(self.project, against, base, desired, allow_removals)
        return planning.plan_against_registry(self.project, self.registry, desired, allow_removals)

    def apply(self, plan_file: str | Path | None = None, *, allow_removals: bool = False) -> ApplyResult:
        from featurectl.app import planning
        self._serving = None
        actor = self._actor or planning.default_actor()
        git_commit = self._git_commit()
        if plan_file is not None:
            return planning.apply_saved(Path(plan_file), self.project, self.registry, actor=actor,
                                        clock=self._clock, git_commit=git_commit)
        desired = self.definitions
        self.offline.check_sources(desired)
        return planning.apply(self.project, self.registry, desired, actor=actor, clock=self._clock,
                              git_commit=git_commit, allow_removals=allow_removals)

    def _git_commit(self) -> str | None:
        from featurectl.loading.git import git_commit
        return git_commit(self.repo.root)

    # --- data -----------------------------------------------------------------------------
    def materialize(self, start: datetime | str, end: datetime | str, views: Sequence[str] | None = None,
                    progress: "Progress | None" = None) -> "list[ViewRun]":
        now = self._clock()
        start_at, end_at = to_utc(start, now), to_utc(end, now)
        if start_at >= end_at:
            raise UsageError(f"START ({start_at.isoformat()}) must be before END ({end_at.isoformat()})")
        with self._materializer(views, progress) as (materializer, selected):
            return materializer.run(selected, {v.name: (start_at, end_at) for v in selected})

    def materialize_incremental(self, end: datetime | str, views: Sequence[str] | None = None,
                                progress: "Progress | None" = None) -> "list[ViewRun]":
        from featurectl.app.materialize import incremental_windows

        end_at = to_utc(end, self._clock())
        with self._materializer(views, progress) as (materializer, selected):
            windows = incremental_windows(self.online, self.project, materializer.defs, selected, end_at)
            return materializer.run(selected, windows)

    def online_status(self, views: Sequence[str] | None = None) -> "list[OnlineStatus]":
        """Per applied view (or the named ones), at its applied major: the watermark and the newest
        event timestamp that this online store holds (None where it holds none)."""
        from featurectl.app.materialize import online_status, select_views

        defs = self.applied()
        return online_status(self.online, self.project, defs, select_views(defs, views))

    @contextmanager
    def _materializer(self, views: Sequence[str] | None, progress: "Progress | None"):
        from featurectl.app.materialize import Materializer, NoProgress, select_views

        defs = self.applied()
        selected = select_views(defs, views)
        observers = self._lineage_observers()
        try:
            # The offline store (duckdb, pyarrow: ~0.3 s to import) opens when a view has a
            # window to read; `materialize-incremental` with nothing new never opens it.
            offline = cast("OfflineStore", _OnFirstUse(lambda: self.offline))
            yield Materializer(self.project, defs, offline, self.online,
                               progress or NoProgress(), observers=observers), selected
        finally:
            for observer in observers:
                observer.close()

    def _lineage_observers(self) -> tuple:
        """An OpenLineage emitter when featurectl.yaml has a `lineage:` block."""
        config = self.repo.config.lineage
        if config is None:
            return ()
        from featurectl.events.openlineage import OpenLineageEmitter
        return (OpenLineageEmitter(config, self.project, self._clock),)

    def prune(self, views: Sequence[str] | None = None, *, dry_run: bool = False) -> "list[OldMajor]":
        """Drop the online data of every major below each applied view's major (kept after a
        major bump for readers pinned to it); with dry_run, only say what would be dropped."""
        from featurectl.app.prune import prune

        self._serving = None
        return prune(self.project, self.registry, self.online, self.applied(), views, dry_run=dry_run)

    def get_online_features(self, features: Sequence[str] | None = None,
                            entity_rows: Sequence[Mapping[str, Any]] = (), *, service: str | None = None,
                            full_feature_names: bool = False) -> dict[str, list[Any]]:
        return self.get_online_result(features, entity_rows, service=service,
                                      full_feature_names=full_feature_names).columns

    def get_online_result(self, features: Sequence[str] | None = None,
                          entity_rows: Sequence[Mapping[str, Any]] = (), *, service: str | None = None,
                          full_feature_names: bool = False) -> "OnlineResult":
        """get_online_features with each column's dtype, for encoders (`render.values`)."""
        return self._online_reader().read(features, entity_rows, self._clock(), service=service,
                                          full_feature_names=full_feature_names)

    def get_historical_features(self, entity_df: Any, features: Sequence[str] | None = None, *,
                                service: str | None = None, timestamp_column: str = "event_timestamp",
                                full_feature_names: bool = False) -> "pa.Table":
        return self.historical_reader(entity_df, features, service=service, timestamp_column=timestamp_column,
                                      full_feature_names=full_feature_names).read_all()

    def historical_reader(self, entity_df: Any, features: Sequence[str] | None = None, *,
                          service: str | None = None, timestamp_column: str = "event_timestamp",
                          full_feature_names: bool = False) -> "pa.RecordBatchReader":
        """Streaming form of get_historical_features, for writing large results to files.
        `entity_df` may also be a path (str or Path) to .parquet/.csv entity files, a glob of
        them or a URI the cluster sees (`s3a://...`): the engine reads them itself."""
        import pyarrow as pa

        from featurectl.app.entity_files import open_entity_files
        from featurectl.app.retrieval import historical_requests
        from featurectl.offline.entity_rows import EntityFiles

        defs = self.applied()
        if isinstance(entity_df, (str, Path)):
            entity_df = open_entity_files(entity_df, defs)
        rows = entity_df if isinstance(entity_df, (pa.Table, EntityFiles)) else \
            pa.Table.from_pandas(entity_df, preserve_index=False)
        requests = historical_requests(defs, list(features or []), service, full_feature_names,
                                       tuple(rows.column_names or []))
        return self.offline.get_historical_features(rows, requests, timestamp_column=timestamp_column,
                                                    full_feature_names=full_feature_names)

    def write_historical_features(self, entities: str | Path, output: str | Path,
                                  features: Sequence[str] | None = None, *, service: str | None = None,
                                  timestamp_column: str = "event_timestamp", full_feature_names: bool = False) -> int:
        """`get-historical`: join the entity rows of .parquet/.csv files (a file, a glob, a URI)
        point in time and stream the result to `output` (.parquet or .csv, written whole or not
        at all); returns the rows written. The engine reads the entity files itself (Spark: its
        executors, never the driver). `output` is checked before any data is read; errors name the
        entity file."""
        # An engine that can start on a thread does so while the rest is imported and the
        # entity file and the registry are read (DuckDB: ~30 ms of a whole process, hidden).
        start = getattr(self.offline, "start", None)
        if start is not None:
            start()
        from featurectl.app.result_files import check_result_path, write_table
        from featurectl.offline.base import EntityRowsError

        output = Path(output)
        check_result_path(output)  # before the join, not after it
        try:
            reader = self.historical_reader(entities, features, service=service, timestamp_column=timestamp_column,
                                            full_feature_names=full_feature_names)
            return write_table(reader, output)
        except EntityRowsError as exc:
            raise UsageError(f"entity file {entities}: {exc}", hint=exc.hint) from None

    # --- monitoring -----------------------------------------------------------------------
    def drift(self, reference: str | Path, current: str | Path, features: Sequence[str] | None = None, *,
              psi_warn: float | None = None, psi_drift: float | None = None,
              fail_on: str | None = None) -> "DriftResult":
        """Compare each feature's distribution in `current` against `reference` (SPEC §9).
        Thresholds not given come from featurectl.yaml's monitoring.drift block."""
        from featurectl.app import monitoring

        thresholds = self.drift_thresholds(psi_warn, psi_drift, fail_on)
        refs = list(features) if features else None
        return monitoring.drift(str(reference), str(current), refs, thresholds,
                                self._monitoring_sources(refs, str(reference), str(current)))

    def profile(self, dataset: str | Path, out: str | Path, features: Sequence[str] | None = None) -> dict[str, Any]:
        """Write a reference profile of `dataset` to `out` (a .json file); returns its content.
        `out` is checked before the dataset is read, and written whole or not at all."""
        from featurectl.app import monitoring

        refs = list(features) if features else None
        return monitoring.write_profile(str(dataset), Path(out), refs,
                                        lambda: self._monitoring_sources(refs, str(dataset)))

    def freshness(self, views: Sequence[str] | None = None, *, now: datetime | str | None = None,
                  fail_on: str | None = None, check_source: bool = False) -> "FreshnessResult":
        """Per online view with a freshness_sla: the age of its newest served value against the
        SLA (SPEC §9). `now` evaluates at another time; fail_on defaults to monitoring.freshness."""
        from featurectl.app.freshness import freshness

        at = self._clock() if now is None else to_utc(now, self._clock())
        return freshness(self.project, self.applied(), self.online, self.offline if check_source else None, at,
                         views, fail_on or self.repo.config.monitoring.freshness.fail_on)

    def drift_thresholds(self, psi_warn: float | None = None, psi_drift: float | None = None,
                         fail_on: str | None = None):
        from featurectl.core.monitoring import DriftThresholds

        config = self.repo.config.monitoring.drift
        return DriftThresholds(config.psi_warn, config.psi_drift, config.fail_on).given(psi_warn, psi_drift, fail_on)

    def _monitoring_sources(self, refs: list[str] | None, *specs: str) -> "Sources":
        """The registry is read only when features are named; the offline store only for a window."""
        from featurectl.app.monitoring import WINDOW_PREFIX, Sources

        from featurectl.app.features import current_definitions
        revision, defs = current_definitions(self.registry) if refs else (None, None)
        offline = self.offline if any(s.startswith(WINDOW_PREFIX) for s in specs) else None
        return Sources(defs, offline, self._clock(), registry_revision=revision)


def open_store_if_any(repo_path: str | Path | None = None) -> FeatureStore | None:
    """The store of `repo_path`, or of the repository at or above the current directory; None
    when no path is given and there is none (commands like drift work on plain files too)."""
    from featurectl.loading.config import find_repo_root

    if repo_path is None:
        try:
            find_repo_root(Path.cwd())
        except DefinitionError:
            return None
    return FeatureStore(repo_path)


def drift(reference: str | Path, current: str | Path, features: Sequence[str] | None = None, *,
          repo_path: str | Path | None = None, psi_warn: float | None = None, psi_drift: float | None = None,
          fail_on: str | None = None) -> "DriftResult":
    """`featurectl drift`: FeatureStore.drift of the repository (`repo_path`, or the one at or
    above the current directory), or, outside any repository, between plain files with the
    default thresholds (no --features, no windows: those need the definitions)."""
    store = open_store_if_any(repo_path)
    if store is not None:
        with store:
            return store.drift(reference, current, features, psi_warn=psi_warn, psi_drift=psi_drift, fail_on=fail_on)
    from featurectl.app import monitoring
    from featurectl.core.monitoring import DriftThresholds

    refs = list(features) if features else None
    return monitoring.drift(str(reference), str(current), refs, DriftThresholds().given(psi_warn, psi_drift, fail_on),
                            _no_repository_sources())


def profile(dataset: str | Path, out: str | Path, features: Sequence[str] | None = None, *,
            repo_path: str | Path | None = None) -> dict[str, Any]:
    """`featurectl profile`: FeatureStore.profile, or outside any repository a profile of a plain file."""
    store = open_store_if_any(repo_path)
    if store is not None:
        with store:
            return store.profile(dataset, out, features)
    from featurectl.app import monitoring

    return monitoring.write_profile(str(dataset), Path(out), list(features) if features else None,
                                    _no_repository_sources)


def _no_repository_sources() -> "Sources":
    from featurectl.app.monitoring import Sources
    return Sources(None, None, _utc_now())

