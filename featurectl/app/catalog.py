"""Collect what `featurectl docs` shows from the registry (and, later, the online store)."""
from __future__ import annotations

from featurectl.app.planning import current_definitions
from featurectl.core.catalog import AppliedRevision, Catalog, removed_objects
from featurectl.registry.base import Registry

# Freshness needs the newest event timestamp per view kept by the online store, which the
# store bookkeeping does not provide yet; the catalog says so instead of guessing.
FRESHNESS_UNAVAILABLE = ("freshness unavailable: the online store does not keep the newest event "
                         "timestamp per view yet")


def collect_catalog(project: str, registry: Registry) -> Catalog:
    revision, defs = current_definitions(registry)
    history = tuple(AppliedRevision(r.revision, r.applied_at, r.actor, r.git_commit, tuple(r.changes))
                    for r in registry.history())
    removed = {}
    for kind, name in removed_objects(defs, history):
        definitions = [v.definition for v in registry.versions(kind, name) if v.definition is not None]
        if definitions:
            removed[(kind, name)] = definitions[-1]
    return Catalog(project, revision, defs, history, removed, freshness=None, freshness_note=FRESHNESS_UNAVAILABLE)
