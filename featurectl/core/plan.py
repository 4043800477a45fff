"""The plan: a frozen record of what apply would change and whether it may.

Built from the diff by the version policy; rendered by featurectl.render, executed by
featurectl.app. It carries no presentation of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from featurectl.core.bumps import Bump, largest
from featurectl.core.definitions import Definitions
from featurectl.core.diff import Action, Item
from featurectl.core.model import Kind

BaseKind = Literal["registry", "git"]  # what a plan was compared against

@dataclass(frozen=True)
class Base:
    """What the plan was compared against: a registry revision, or a git ref."""

    kind: BaseKind
    revision: int | None = None
    ref: str | None = None


@dataclass(frozen=True)
class Violation:
    rule: str
    kind: Kind
    name: str
    message: str


@dataclass(frozen=True)
class Change:
    kind: Kind
    name: str
    action: Action
    from_version: str | None
    to_version: str | None
    required_bump: Bump
    declared_bump: Bump
    valid: bool
    items: tuple[Item, ...]
    impacted: tuple[str, ...] | None = None  # feature views only: applied services reading it


# Follow-ups: what the user has to do (or may do) after applying. Typed facts; the
# renderers and the JSON format word them (featurectl.formats.plan.follow_up_message).

@dataclass(frozen=True)
class NewMajorStartsEmpty:
    """An online view moves to a new major: its online namespace is empty until materialized."""

    view: str
    major: int


@dataclass(frozen=True)
class OldMajorDataRetained:
    """The previous major's online values stay for readers pinned to it (`view@N:feature`)
    until `featurectl prune` drops them."""

    view: str
    major: int


@dataclass(frozen=True)
class TtlIncreasedNeedsRematerialize:
    """A longer ttl: reads serve older values now, but the online store holds only what was
    materialized under the old ttl (an incremental run first loads the ttl before its end), so
    entities whose latest event is older are missing until the longer window is rematerialized."""

    view: str
    ttl_seconds: int  # the new ttl, the window to rematerialize; 0: no expiry


FollowUp = NewMajorStartsEmpty | OldMajorDataRetained | TtlIncreasedNeedsRematerialize


@dataclass(frozen=True)
class Plan:
    project: str
    base: Base
    changes: tuple[Change, ...]
    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...]
    unchanged: int
    desired: Definitions = field(repr=False)
    follow_ups: tuple[FollowUp, ...] = ()
    allow_removals: bool = False  # judged with --allow-removals: applying it needs the flag too

    @property
    def valid(self) -> bool:
        return not self.violations

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def largest_bump(self) -> Bump:
        return largest(c.required_bump for c in self.changes)

    @property
    def summary(self) -> dict[str, int]:
        actions = [c.action for c in self.changes]
        return {
            "add": actions.count("add"),
            "update": actions.count("update"),
            "remove": actions.count("remove"),
            "unchanged": self.unchanged,
            "violations": len(self.violations),
            "warnings": len(self.warnings),
        }
