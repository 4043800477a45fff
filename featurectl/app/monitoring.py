"""Use cases: drift between two datasets, and reference profiles (SPEC §9)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from featurectl.app.features import resolve
from featurectl.app.timeparse import to_utc
from featurectl.core.definitions import Definitions
from featurectl.core.dtypes import NUMERIC
from featurectl.core.errors import UsageError
from featurectl.core.monitoring import (DRIFT_STATUSES, DriftThresholds, FeatureDrift, ReferenceProfile, at_or_above,
                                        compare)

if TYPE_CHECKING:
    from featurectl.offline.base import OfflineStore
    from featurectl.stats.datasets import Column, Dataset
    from featurectl.stats.engine import Wanted

WINDOW_PREFIX = "window:"
_CATEGORICAL_DTYPES = ("string", "bool")


@dataclass(frozen=True)
class DriftResult:
    reference: str
    current: str
    thresholds: DriftThresholds
    features: tuple[FeatureDrift, ...]
    skipped: tuple[str, ...] = ()  # columns of one side only, when no --features was given

    @property
    def failing(self) -> list[FeatureDrift]:
        return [f for f in self.features if at_or_above(f.status, self.thresholds.fail_on, DRIFT_STATUSES)]


@dataclass
class Sources:
    """What a dataset spec may need: the applied definitions (for --features and windows),
    the offline store (for windows) and the time `now` means."""

    defs: Definitions | None
    offline: "OfflineStore | None"
    now: datetime
    registry_revision: int | None = None


def drift(reference: str, current: str, refs: list[str] | None, thresholds: DriftThresholds,
          sources: Sources) -> DriftResult:
    from featurectl.stats.engine import observe_current
    from featurectl.stats.profile_file import is_profile_path, read_profile
    from featurectl.stats.pvalues import PVALUES, preload

    problems = thresholds.problems()
    if problems:
        raise UsageError("; ".join(problems), hint="pass thresholds with 0 <= --psi-warn <= --psi-drift")
    if is_profile_path(current):
        raise UsageError(f"current '{current}': a profile can only be the reference",
                         hint="give the current data as a .parquet/.csv file, a directory or window:START/END")
    preload()
    conn = _connect()
    try:
        wanted = _wanted_from_refs(refs, sources.defs) if refs else None
        skipped: list[str] = []
        if is_profile_path(reference):
            profiles = _select_profiles(read_profile(reference)[1], wanted, reference)
            cur = _open(conn, current, "current", [_as_wanted(p) for p in profiles], sources)
        else:
            ref = _open(conn, reference, "reference", wanted, sources)
            cur = _open(conn, current, "current", wanted, sources)
            wanted = wanted or _common_columns(ref, cur, skipped)
            profiles = _profile(conn, ref, wanted)
        columns = [_column(cur, _as_wanted(p)) for p in profiles]
        observed = observe_current(conn, list(zip(profiles, columns)))
    finally:
        conn.close()
    features = tuple(compare(p, o, thresholds, PVALUES) for p, o in zip(profiles, observed))
    return DriftResult(reference, current, thresholds, features, tuple(skipped))


def profile(dataset: str, refs: list[str] | None, sources: Sources) -> dict[str, Any]:
    """The profile file's content (stats/profile_file.py) for a dataset."""
    from featurectl.stats.engine import KS_GRID_POINTS
    from featurectl.stats.profile_file import profile_to_dict

    conn = _connect()
    try:
        wanted = _wanted_from_refs(refs, sources.defs) if refs else None
        data = _open(conn, dataset, "dataset", wanted, sources)
        if wanted is None:
            wanted = [_wanted_of_column(data.locate(view, name)) for view, name in data.candidates()]
            if not wanted:
                raise UsageError(f"{data.label} has no numeric, string or bool column to profile",
                                 hint="pass --features view:feature")
        profiles = _profile(conn, data, wanted)
    finally:
        conn.close()
    return profile_to_dict(profiles, dataset=dataset, registry_revision=sources.registry_revision,
                           created_at=sources.now.isoformat(), ks_grid_points=KS_GRID_POINTS)


def write_profile(dataset: str, out: Path, refs: list[str] | None,
                  sources: "Callable[[], Sources]") -> dict[str, Any]:
    """Profile `dataset` into the file `out`, checked before any work (a .json file in a
    writable place) and written whole or not at all; returns the content."""
    from featurectl.app import outfiles

    if not out.name.lower().endswith(".json"):
        raise UsageError(f"--out {out}: a profile is a .json file", hint="name it e.g. train.profile.json")
    outfiles.check_writable(out, "--out")
    content = profile(dataset, refs, sources())
    outfiles.write_json(out, content, "--out")
    return content


# --- the parts ----------------------------------------------------------------------------

def _connect():
    from featurectl.stats.datasets import connect
    return connect()


def _profile(conn, data: "Dataset", wanted: "list[Wanted]") -> list[ReferenceProfile]:
    from featurectl.stats.engine import profile_reference
    return profile_reference(conn, [(w, _column(data, w)) for w in wanted])


def _wanted_from_refs(refs: list[str], defs: Definitions | None) -> "list[Wanted]":
    """Features named view:feature, with their kind from the declared dtype."""
    from featurectl.stats.engine import Wanted

    if defs is None:
        raise UsageError("--features needs a feature repository (the definitions say each feature's dtype)",
                         hint="run inside the repository or pass --repo, or leave out --features to compare "
                              "every column both datasets hold")
    wanted = []
    for view, features in resolve(defs, refs).views:
        for name in features:
            feature = view.feature(name)
            assert feature is not None  # resolve() checked every name
            dtype = feature.dtype
            if dtype in NUMERIC:
                kind = "numeric"
            elif dtype in _CATEGORICAL_DTYPES:
                kind = "categorical"
            else:
                raise UsageError(f"feature {view.name}:{name} has dtype {dtype}: drift compares numeric, "
                                 "string and bool features", hint="leave it out of --features")
            wanted.append(Wanted(view.name, name, kind, dtype, view.version))
    return wanted


def _wanted_of_column(column: "Column") -> "Wanted":
    from featurectl.stats.datasets import kind_of_sql_type
    from featurectl.stats.engine import Wanted

    return Wanted(column.table.view, column.name, kind_of_sql_type(column.sql_type) or "numeric")


def _as_wanted(p: ReferenceProfile) -> "Wanted":
    from featurectl.stats.engine import Wanted
    return Wanted(p.view, p.feature, p.kind, p.dtype, p.version)


def _common_columns(ref: "Dataset", cur: "Dataset", skipped: list[str]) -> "list[Wanted]":
    wanted = []
    for view, name in ref.candidates():
        try:
            cur.locate(view, name)
        except UsageError:
            skipped.append(f"{view}:{name}" if view else name)
            continue
        wanted.append(_wanted_of_column(ref.locate(view, name)))
    if not wanted:
        raise UsageError(f"{ref.label} and {cur.label} have no numeric, string or bool column in common",
                         hint="pass --features view:feature for the features to compare")
    return wanted


def _select_profiles(profiles: list[ReferenceProfile], wanted: "list[Wanted] | None",
                     path: str) -> list[ReferenceProfile]:
    if wanted is None:
        return profiles
    chosen = []
    for w in wanted:
        match = next((p for p in profiles if p.feature == w.feature and p.view in (w.view, None)), None)
        if match is None:
            raise UsageError(f"reference profile '{path}' has no feature {w.view}:{w.feature}",
                             hint=f"it holds: {', '.join(p.name for p in profiles)}; profile it again with "
                                  "those --features")
        chosen.append(match)
    return chosen


def _column(data: "Dataset", wanted: "Wanted") -> "Column":
    """The feature's column, checked to hold what its kind needs."""
    from featurectl.stats.datasets import kind_of_sql_type

    column = data.locate(wanted.view, wanted.feature)
    if wanted.kind == "numeric" and kind_of_sql_type(column.sql_type) != "numeric":
        declared = f"declared {wanted.dtype}" if wanted.dtype else "numeric in the reference"
        raise UsageError(f"{column.table.label}: column '{column.name}' holds {column.sql_type}, not numbers, "
                         f"but feature {_shown(wanted)} is {declared}",
                         hint="fix the data's column type, or compare a dataset whose column is numeric")
    return column


def _shown(wanted: "Wanted") -> str:
    return f"{wanted.view}:{wanted.feature}" if wanted.view else wanted.feature


def _open(conn, spec: str, role: str, wanted: "list[Wanted] | None", sources: Sources) -> "Dataset":
    from featurectl.stats.datasets import from_arrow, open_path

    if not spec.startswith(WINDOW_PREFIX):
        return open_path(conn, spec, role)
    start, end = parse_window(spec, role, sources.now)
    if not wanted or sources.defs is None or sources.offline is None:
        raise UsageError(f"{role} '{spec}': a window reads the views' offline sources, so it needs --features "
                         "in a feature repository", hint="pass --features view:feature[,view:*]")
    return from_arrow(conn, f"{role} '{spec}'", _window_tables(wanted, start, end, sources))


def _window_tables(wanted: "list[Wanted]", start: datetime, end: datetime, sources: Sources):
    from featurectl.app.materialize import request_for

    defs, offline = sources.defs, sources.offline
    assert defs is not None and offline is not None  # _open checked both
    by_view: dict[str, list[str]] = {}
    for w in wanted:
        by_view.setdefault(w.view or "", []).append(w.feature)
    parts = []
    for view_name, features in by_view.items():
        request = request_for(defs, defs.feature_views[view_name], features)
        parts.append((view_name, offline.source_rows(request, start, end).read_all()))
    return parts


def parse_window(spec: str, role: str, now: datetime) -> tuple[datetime, datetime]:
    body = spec[len(WINDOW_PREFIX):]
    start_text, sep, end_text = body.partition("/")
    hint = "write window:START/END, e.g. window:2026-01-01/2026-02-01 (ISO 8601, no zone = UTC; END may be now)"
    if not sep or not start_text.strip() or not end_text.strip():
        raise UsageError(f"{role} '{spec}': malformed window", hint=hint)
    try:
        start, end = to_utc(start_text, now), to_utc(end_text, now)
    except UsageError as exc:
        raise UsageError(f"{role} '{spec}': {exc}", hint=hint) from None
    if start >= end:
        raise UsageError(f"{role} '{spec}': START ({start.isoformat()}) must be before END ({end.isoformat()})",
                         hint=hint)
    return start, end
