"""Pairing current and desired definitions by name and classifying every difference."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from featurectl.core.bumps import Bump, largest
from featurectl.core.definitions import Definitions, canonical
from featurectl.core.model import KINDS, Feature, Kind
from featurectl.core.rules import Context, Scope, rules_for


Action = Literal["add", "update", "remove"]


@dataclass(frozen=True)
class Item:
    rule: str
    path: str
    bump: Bump
    old: Any
    new: Any
    message: str


@dataclass(frozen=True)
class ObjectDiff:
    """One object present on either side that differs (unchanged objects are not listed)."""

    kind: Kind
    name: str
    action: Action
    current: Any
    desired: Any
    items: tuple[Item, ...]

    @property
    def required_bump(self) -> Bump:
        if self.action == "remove" and self.kind in ("feature_view", "feature_service"):
            return "major"
        return largest(item.bump for item in self.items)


def classify(scope: Scope, current: Any, desired: Any, ctx: Context, prefix: str = "") -> list[Item]:
    items = []
    for rule in rules_for(scope):
        for path, old, new, message in rule.check(current, desired, ctx):
            items.append(Item(rule.id, prefix + path, rule.bump, old, new, message))
    return items


def _feature_pairs(current: list[Feature], desired: list[Feature]):
    old = {f.name: f for f in current}
    new = {f.name: f for f in desired}
    names = list(old) + [n for n in new if n not in old]
    return [(old.get(n), new.get(n)) for n in names]


def _items(kind: Kind, current: Any, desired: Any, ctx: Context) -> list[Item]:
    items = classify(kind, current, desired, ctx)
    if kind == "feature_view":
        for cur, des in _feature_pairs(current.features, desired.features):
            items.extend(classify("feature", cur, des, ctx, prefix="features."))
    return items


def _source_changed_under(kind: str, view: Any, ctx: Context) -> bool:
    """An unchanged view still changes when the source it reads changed (SOURCE_CHANGED)."""
    return kind == "feature_view" and ctx.current.sources.get(view.source) != ctx.desired.sources.get(view.source)


def diff(current: Definitions, desired: Definitions) -> tuple[list[ObjectDiff], int]:
    """Every object that differs, in kind order then by name; and the count of unchanged ones."""
    ctx = Context(current=current, desired=desired)
    diffs: list[ObjectDiff] = []
    unchanged = 0
    for kind in KINDS:
        cur_objs, des_objs = current.of_kind(kind), desired.of_kind(kind)
        for name in sorted(set(cur_objs) | set(des_objs)):
            cur, des = cur_objs.get(name), des_objs.get(name)
            if cur is None:
                diffs.append(ObjectDiff(kind, name, "add", None, des, ()))
            elif des is None:
                diffs.append(ObjectDiff(kind, name, "remove", cur, None, ()))
            elif cur == des and not _source_changed_under(kind, cur, ctx):
                unchanged += 1  # equal objects: skip the rules (most of a large plan's time)
            else:
                items = _items(kind, cur, des, ctx)
                if items or canonical(cur) != canonical(des):
                    diffs.append(ObjectDiff(kind, name, "update", cur, des, tuple(items)))
                else:
                    unchanged += 1
    return diffs, unchanged
