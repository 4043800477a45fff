"""The Registry port: applied definitions, their versions and revisions.

Watermarks are not here: they belong to the online store they describe (SPEC §7).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

# The on-disk schema version of every registry backend; bump it with an upgrade step.
SCHEMA_VERSION = 2


class RegistryError(Exception):
    """The registry is unreachable or failing (exit code 3)."""


class StaleRevision(Exception):
    """A commit expected a revision the registry has moved past (STALE_PLAN, exit code 1)."""

    def __init__(self, expected: int, actual: int):
        self.expected, self.actual = expected, actual
        super().__init__(f"the registry is at revision {actual}, the plan was made at revision {expected}")


@dataclass(frozen=True)
class Snapshot:
    """The applied state: its revision (0 for an empty registry) and canonical definitions
    in the shape of `Definitions.to_dict()` (kind plural -> list of canonical dicts)."""

    revision: int
    definitions: dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Revision:
    revision: int
    applied_at: datetime
    actor: str
    git_commit: str | None
    changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectVersion:
    kind: str
    name: str
    version: str | None  # entities and sources carry no version
    revision: int
    definition: dict[str, Any] | None  # None: the object was removed at this revision


@dataclass(frozen=True)
class Commit:
    """One apply: the full desired state plus what changed, written atomically."""

    expected_revision: int
    definitions: dict[str, list[dict[str, Any]]]
    changes: list[dict[str, Any]]
    actor: str
    applied_at: datetime
    git_commit: str | None = None


class Registry(Protocol):
    """A registry backend. Built only through `featurectl.registry.create_registry`, which calls
    `from_config` on the class `BACKENDS[config.type]` names (docs/architecture.md, "How to add
    a backend"); tests/integration/test_registry_contract.py is the suite every backend passes."""

    @classmethod
    def from_config(cls, config: Any, root: Path) -> "Registry":
        """Open (creating its tables on first use) the registry one `registry:` block describes;
        relative paths resolve against the repository `root`. Failures raise RegistryError."""

    def read(self) -> Snapshot: ...

    def commit(self, commit: Commit) -> int:
        """Atomically replace the state if the head is still `expected_revision`; return the
        new revision; raise StaleRevision otherwise. Nothing is written on any failure."""

    def history(self, name: str | None = None) -> list[Revision]:
        """Revisions oldest first; with a name, only those that changed an object of that name."""

    def versions(self, kind: str, name: str) -> list[ObjectVersion]:
        """Every applied version of one object, oldest first."""

    def close(self) -> None: ...
