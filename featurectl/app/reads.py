"""Reading the registry: the applied objects, one object's versions, the revisions.

Each use case returns a result object; `render/registry.py` shapes it for the CLI, and the
HTTP server and the docs site read the same objects."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError
from featurectl.core.model import KINDS, PLURAL
from featurectl.registry.base import ObjectVersion, Registry, Revision

_HINT_NAMES = 20  # a hint names at most this many objects
_KIND_ALIASES = {"views": "feature_view", "view": "feature_view", "services": "feature_service",
                 "service": "feature_service"}


def parse_kind(text: str) -> str:
    """A kind as a user writes it: singular, plural or hyphenated (`feature-views`, `views`)."""
    name = text.strip().lower().replace("-", "_")
    for kind in KINDS:
        if name in (kind, PLURAL[kind]):
            return kind
    if name in _KIND_ALIASES:
        return _KIND_ALIASES[name]
    raise UsageError(f"unknown kind {text!r}", hint="use entities, sources, feature_views or feature_services")


@dataclass(frozen=True)
class AppliedObject:
    kind: str
    name: str
    version: str | None  # entities and sources carry no version
    definition: Any  # the core model object


def list_objects(defs: Definitions, kind: str | None = None) -> list[AppliedObject]:
    """The applied objects, by kind (in KINDS order) then name."""
    return [AppliedObject(k, name, getattr(obj, "version", None) or None, obj)
            for k in KINDS if kind is None or k == kind
            for name, obj in sorted(defs.of_kind(k).items())]


@dataclass(frozen=True)
class ObjectDetail:
    """One object's definition (canonical dict) at the asked version, and all its versions."""

    kind: str
    name: str
    definition: dict[str, Any]
    versions: list[ObjectVersion]


def show_object(registry: Registry, defs: Definitions, name: str, version: str | None = None) -> ObjectDetail:
    """An applied object (or a removed one, at its last definition), optionally at an earlier
    version; unknown names and versions are usage errors naming what exists."""
    kinds = [k for k in KINDS if name in defs.of_kind(k)] or [k for k in KINDS if registry.versions(k, name)]
    if not kinds:
        raise UsageError(f"no applied object named '{name}'", hint="see `featurectl list`")
    kind = kinds[0]
    versions = registry.versions(kind, name)
    defined = [v for v in versions if v.definition is not None]
    if version is not None:
        defined = [v for v in defined if v.version == version]
        if not defined:
            known = ", ".join(dict.fromkeys(v.version for v in versions if v.version)) or "(unversioned)"
            raise UsageError(f"{kind} '{name}' has no applied version {version}", hint=f"applied versions: {known}")
    definition = defined[-1].definition
    assert definition is not None
    return ObjectDetail(kind, name, definition, versions)


def history(registry: Registry, name: str | None = None) -> list[Revision]:
    """Revisions oldest first; with a name, those that changed it. A name no revision ever
    touched is a usage error (like `git log` on an unknown path), naming the known objects."""
    revisions = registry.history(name)
    if name is not None and not revisions:
        known = sorted({c["name"] for r in registry.history() for c in r.changes if "name" in c})
        shown = ", ".join(known[:_HINT_NAMES]) + (f" and {len(known) - _HINT_NAMES} more" if len(known) > _HINT_NAMES else "")
        raise UsageError(f"no object named '{name}' was ever applied, so no revision touched it",
                         hint=f"objects in the registry's history: {shown}" if known
                         else "the registry has no revisions yet; run `featurectl apply`")
    return revisions
