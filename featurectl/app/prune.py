"""`featurectl prune`: drop the online data of majors that no applied definition serves.

After a major bump the previous major's online values stay, so readers pinned to it
(`view@1:feature`) keep working while the new major is materialized (the plan says so with
an OldMajorDataRetained follow-up). Once no reader is left, prune drops them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError
from featurectl.core.model import object_from_dict
from featurectl.online.base import OnlineStore, OnlineTable
from featurectl.registry.base import Registry


@dataclass(frozen=True)
class OldMajor:
    view: str
    major: int  # the major whose online data is (or would be) dropped
    applied_major: int


def old_majors(project: str, registry: Registry, online: OnlineStore, applied: Definitions,
               views: Sequence[str] | None = None) -> list[OldMajor]:
    """Majors below the applied one, ever applied with `online: true`, that still hold online data."""
    names = sorted(applied.feature_views)
    if views:
        unknown = [v for v in views if v not in applied.feature_views]
        if unknown:
            raise UsageError(f"unknown or unapplied feature view(s): {', '.join(unknown)}",
                             hint=f"applied views: {', '.join(names) or '(none)'}")
        names = [n for n in names if n in views]
    found = []
    for name in names:
        applied_major = applied.feature_views[name].major
        served = {view.major for view in _applied_versions(registry, name) if view.online}
        found += [OldMajor(name, major, applied_major) for major in sorted(served) if major < applied_major]
    # The store's bookkeeping knows whether anything was ever written (and delete_table clears it).
    written = online.newest_event_times([_namespace(project, old) for old in found]) if found else []
    return [old for old, newest in zip(found, written) if newest is not None]


def _applied_versions(registry: Registry, name: str):
    for version in registry.versions("feature_view", name):
        if version.definition is not None:
            yield object_from_dict("feature_view", version.definition)


def prune(project: str, registry: Registry, online: OnlineStore, applied: Definitions,
          views: Sequence[str] | None = None, dry_run: bool = False) -> list[OldMajor]:
    """Drop each old major's online namespace (unless dry_run); return what was (or would be) dropped."""
    majors = old_majors(project, registry, online, applied, views)
    if not dry_run:
        for old in majors:
            online.delete_table(_namespace(project, old))
    return majors


def _namespace(project: str, old: OldMajor) -> OnlineTable:
    # Deleting and the bookkeeping need only the (project, view, major) namespace, not the columns.
    return OnlineTable(project=project, view=old.view, major=old.major, join_keys=(), features=(), ttl_seconds=0)
