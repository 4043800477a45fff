"""What the catalog shows: the applied definitions, the objects removed since, the revision
history with its classified changes, and the lineage graph. Pure data; `featurectl docs`
renders it (featurectl.render.site) and the app layer collects it from the registry."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from featurectl.core.definitions import Definitions
from featurectl.core.lineage import Graph, lineage_graph


@dataclass(frozen=True)
class AppliedRevision:
    """One apply as the registry recorded it; `changes` are plan changes (SPEC §4.1 shape)."""

    revision: int
    applied_at: datetime
    actor: str
    git_commit: str | None
    changes: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ObjectChange:
    """One revision's change to one object."""

    revision: AppliedRevision
    change: dict[str, Any]


@dataclass(frozen=True)
class Catalog:
    project: str
    revision: int  # the registry head the catalog shows
    definitions: Definitions  # applied
    history: tuple[AppliedRevision, ...]  # oldest first
    # (kind, name) -> the last applied definition of an object removed since (canonical dict)
    removed: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # online view name -> {major, newest_event_timestamp, watermark, age_seconds} read from the
    # online store; None (and a note saying why) when it could not be read
    freshness: dict[str, dict[str, Any]] | None = None
    freshness_note: str = ""

    @cached_property
    def graph(self) -> Graph:
        return lineage_graph(self.definitions)

    def changes_by_object(self) -> dict[tuple[str, str], list[ObjectChange]]:
        """Every object's changes, oldest first, in one pass over the history."""
        index: dict[tuple[str, str], list[ObjectChange]] = defaultdict(list)
        for revision in self.history:
            for change in revision.changes:
                index[(change["kind"], change["name"])].append(ObjectChange(revision, change))
        return dict(index)


def removed_objects(defs: Definitions, history: tuple[AppliedRevision, ...]) -> list[tuple[str, str]]:
    """Objects some revision removed that are not applied again now, in removal order."""
    gone: dict[tuple[str, str], None] = {}
    for revision in history:
        for change in revision.changes:
            key = (change["kind"], change["name"])
            if change["action"] == "remove":
                gone[key] = None
            else:
                gone.pop(key, None)
    return [key for key in gone if key[1] not in defs.of_kind(key[0])]
