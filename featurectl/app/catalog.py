"""Collect what `featurectl docs` shows from the registry and the online store."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from featurectl.app.materialize import OnlineStatus, online_status
from featurectl.app.features import current_definitions
from featurectl.core.catalog import AppliedRevision, Catalog, removed_objects
from featurectl.core.definitions import Definitions
from featurectl.core.errors import DefinitionError
from featurectl.online.base import OnlineStore, OnlineStoreError
from featurectl.registry.base import Registry


def collect_catalog(project: str, registry: Registry, online: Callable[[], OnlineStore], now: datetime) -> Catalog:
    """`online` opens the online store on demand: its failure is a note on the pages, never an error."""
    revision, defs = current_definitions(registry)
    history = tuple(AppliedRevision(r.revision, r.applied_at, r.actor, r.git_commit, tuple(r.changes))
                    for r in registry.history())
    removed = {}
    for kind, name in removed_objects(defs, history):
        definitions = [v.definition for v in registry.versions(kind, name) if v.definition is not None]
        if definitions:
            removed[(kind, name)] = definitions[-1]
    freshness, note = _freshness(project, defs, online, now)
    return Catalog(project, revision, defs, history, removed, freshness=freshness, freshness_note=note)


def _freshness(project: str, defs: Definitions, online: Callable[[], OnlineStore],
               now: datetime) -> tuple[dict[str, dict[str, Any]] | None, str]:
    views = sorted((v for v in defs.feature_views.values() if v.online), key=lambda v: v.name)
    if not views:
        return {}, ""
    try:
        statuses = online_status(online(), project, defs, views)
    except (OnlineStoreError, DefinitionError, OSError) as exc:
        return None, f"freshness unavailable: the online store could not be read ({exc})"
    return {s.view: _facts(s, now) for s in statuses}, f"freshness as of {now.isoformat()}"


def _facts(status: OnlineStatus, now: datetime) -> dict[str, Any]:
    newest = status.newest_event_timestamp
    return {
        "major": status.major,
        "newest_event_timestamp": newest.isoformat() if newest else None,
        "watermark": status.watermark.isoformat() if status.watermark else None,
        "age_seconds": round((now - newest).total_seconds(), 3) if newest else None,
    }
