"""The compatibility rule catalog: one entry per rule id, each a small pure check.

A check judges one paired (current, desired) object of its scope and yields findings as
(path, old, new, message). Pairing objects and features by name is the engine's job
(featurectl.core.diff); turning bumps into verdicts is the policy's (featurectl.core.policy).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal

from featurectl.core.bumps import Bump
from featurectl.core.definitions import Definitions, canonical
from featurectl.core.dtypes import is_widening
from featurectl.core.durations import format_duration
from featurectl.core.model import Constraints, Feature, FeatureService, FeatureView

Finding = tuple[str, Any, Any, str]  # path, old, new, message
# What a rule looks at: an object of one kind, or one feature inside a view.
Scope = Literal["feature", "feature_view", "feature_service", "entity", "source"]


@dataclass(frozen=True)
class Context:
    """Both whole states, for rules that look beyond the paired object (a view's source)."""

    current: Definitions
    desired: Definitions


@dataclass(frozen=True)
class Rule:
    id: str
    bump: Bump
    purpose: str
    scopes: tuple[Scope, ...]
    check: Callable[[Any, Any, Context], Iterable[Finding]]


def _feature_summary(feature: Feature) -> dict[str, Any]:
    return {"name": feature.name, "dtype": feature.dtype}


# --- features -------------------------------------------------------------------------

def _added(required: bool):
    def check(cur: Feature | None, des: Feature | None, ctx: Context) -> Iterator[Finding]:
        if cur is None and des is not None and (not des.nullable and des.default is None) == required:
            kind = "required feature" if required else "feature"
            yield des.name, None, _feature_summary(des), f"{kind} '{des.name}' ({des.dtype}) added"
    return check


def _removed(cur: Feature | None, des: Feature | None, ctx: Context) -> Iterator[Finding]:
    if cur is not None and des is None:
        yield cur.name, _feature_summary(cur), None, f"feature '{cur.name}' removed"


def _dtype(widened: bool):
    def check(cur: Feature | None, des: Feature | None, ctx: Context) -> Iterator[Finding]:
        if cur and des and cur.dtype != des.dtype and is_widening(cur.dtype, des.dtype) == widened:
            verb = "widened" if widened else "changed"
            yield f"{des.name}.dtype", cur.dtype, des.dtype, (
                f"feature '{des.name}' dtype {verb} from {cur.dtype} to {des.dtype}")
    return check


def _nullability(cur: Feature | None, des: Feature | None, ctx: Context) -> Iterator[Finding]:
    if cur and des and cur.nullable != des.nullable:
        state = "nullable" if des.nullable else "not nullable"
        yield f"{des.name}.nullable", cur.nullable, des.nullable, f"feature '{des.name}' is now {state}"


def _default(cur: Feature | None, des: Feature | None, ctx: Context) -> Iterator[Finding]:
    if cur and des and cur.default != des.default:
        yield f"{des.name}.default", cur.default, des.default, (
            f"feature '{des.name}' default changed from {cur.default!r} to {des.default!r}")


def _constraint_moves(name: str, old: Constraints | None, new: Constraints | None) -> Iterator[tuple[str, Finding]]:
    """Every constraint difference, labelled 'relaxed' or 'tightened'."""
    old, new = old or Constraints(), new or Constraints()
    for bound, looser in (("min", lambda o, n: n < o), ("max", lambda o, n: n > o)):
        o, n = getattr(old, bound), getattr(new, bound)
        if o == n:
            continue
        path = f"{name}.constraints.{bound}"
        if n is None:
            yield "relaxed", (path, o, None, f"feature '{name}' {bound} constraint removed")
        elif o is None:
            yield "tightened", (path, None, n, f"feature '{name}' {bound} constraint added ({n:g})")
        else:
            direction = "relaxed" if looser(o, n) else "tightened"
            verb = "lowered" if n < o else "raised"
            yield direction, (path, o, n, f"feature '{name}' {bound} {verb} from {o:g} to {n:g}")
    o, n = old.allowed, new.allowed
    path = f"{name}.constraints.allowed"
    if o is not None and n is None:
        yield "relaxed", (path, o, None, f"feature '{name}' allowed-values constraint removed")
    elif o is None and n is not None:
        yield "tightened", (path, None, n, f"feature '{name}' allowed-values constraint added")
    elif o is not None and n is not None:
        gained = [v for v in n if v not in o]
        lost = [v for v in o if v not in n]
        if gained:
            yield "relaxed", (path, o, n, f"feature '{name}' allows new values {gained}")
        if lost:
            yield "tightened", (path, o, n, f"feature '{name}' no longer allows {lost}")


def _constraints(direction: str):
    def check(cur: Feature | None, des: Feature | None, ctx: Context) -> Iterator[Finding]:
        if cur and des and cur.constraints != des.constraints:
            for label, finding in _constraint_moves(des.name, cur.constraints, des.constraints):
                if label == direction:
                    yield finding
    return check


# --- feature views --------------------------------------------------------------------

def _entities(cur: FeatureView, des: FeatureView, ctx: Context) -> Iterator[Finding]:
    if cur.entities != des.entities:
        yield "entities", cur.entities, des.entities, (
            f"entities changed from [{', '.join(cur.entities)}] to [{', '.join(des.entities)}]")


def _ttl(shorter: bool):
    infinite = float("inf")

    def check(cur: FeatureView, des: FeatureView, ctx: Context) -> Iterator[Finding]:
        old, new = cur.ttl or infinite, des.ttl or infinite
        if old != new and (new < old) == shorter:
            verb = "decreased" if shorter else "increased"
            yield "ttl", format_duration(cur.ttl), format_duration(des.ttl), (
                f"ttl {verb} from {format_duration(cur.ttl)} to {format_duration(des.ttl)}")
    return check


def _source_fields(source: Any) -> dict[str, Any]:
    return {k: v for k, v in canonical(source).items() if k != "description"}


def _source_of_view(cur: FeatureView, des: FeatureView, ctx: Context) -> Iterator[Finding]:
    if cur.source != des.source:
        yield "source", cur.source, des.source, f"source changed from '{cur.source}' to '{des.source}'"
        return
    old, new = ctx.current.sources.get(cur.source), ctx.desired.sources.get(des.source)
    if old is not None and new is not None and _source_fields(old) != _source_fields(new):
        yield "source", _source_fields(old), _source_fields(new), f"source '{des.source}' definition changed"


def _source_itself(cur: Any, des: Any, ctx: Context) -> Iterator[Finding]:
    old, new = _source_fields(cur), _source_fields(des)
    for key in sorted(set(old) | set(new)):
        if key != "name" and old.get(key) != new.get(key):
            yield key, old.get(key), new.get(key), f"source '{des.name}' {key} changed"


def _source_changed(cur: Any, des: Any, ctx: Context) -> Iterator[Finding]:
    """On a view: it reads another source or its source changed; on a source: what changed."""
    return _source_of_view(cur, des, ctx) if isinstance(des, FeatureView) else _source_itself(cur, des, ctx)


def _online(enabled: bool):
    def check(cur: FeatureView, des: FeatureView, ctx: Context) -> Iterator[Finding]:
        if cur.online != des.online and des.online == enabled:
            yield "online", cur.online, des.online, f"online serving {'enabled' if enabled else 'disabled'}"
    return check


METADATA = ("description", "owner", "tags", "freshness_sla", "deprecated")


def _metadata(cur: Any, des: Any, ctx: Context) -> Iterator[Finding]:
    if cur is None or des is None:
        return
    for key in METADATA:
        if key in type(des).model_fields:
            old, new = getattr(cur, key), getattr(des, key)
            if old != new:
                prefix = f"{des.name}." if isinstance(des, Feature) else ""
                if key == "freshness_sla":
                    old, new = (format_duration(v) if v is not None else None for v in (old, new))
                yield f"{prefix}{key}", old, new, f"{prefix}{key} changed"


# --- entities and services ------------------------------------------------------------

def _entity_key(cur: Any, des: Any, ctx: Context) -> Iterator[Finding]:
    for key in ("join_key", "dtype"):
        if getattr(cur, key) != getattr(des, key):
            yield key, getattr(cur, key), getattr(des, key), (
                f"entity '{des.name}' {key} changed from {getattr(cur, key)} to {getattr(des, key)}")


def _service_refs(removed: bool):
    def check(cur: FeatureService, des: FeatureService, ctx: Context) -> Iterator[Finding]:
        before, after = cur.features, des.features
        refs = [r for r in before if r not in after] if removed else [r for r in after if r not in before]
        for ref in refs:
            verb = "no longer serves" if removed else "now serves"
            yield f"features.{ref}", ref if removed else None, None if removed else ref, f"{verb} '{ref}'"
    return check


CATALOG: tuple[Rule, ...] = (
    Rule("FEATURE_ADDED", "minor", "A feature was added that is nullable or has a default.",
         ("feature",), _added(required=False)),
    Rule("FEATURE_ADDED_REQUIRED", "major", "A feature was added with nullable: false and no default.",
         ("feature",), _added(required=True)),
    Rule("FEATURE_REMOVED", "major", "A feature was removed (a rename is a removal plus an addition).",
         ("feature",), _removed),
    Rule("FEATURE_DTYPE_WIDENED", "minor",
         "A dtype widened without loss (int32->int64, int32->float64, int64->float64, float32->float64, also in list<>).",
         ("feature",), _dtype(widened=True)),
    Rule("FEATURE_DTYPE_CHANGED", "major", "A dtype changed in a way that is not a widening.",
         ("feature",), _dtype(widened=False)),
    Rule("FEATURE_NULLABILITY_CHANGED", "major", "A feature's nullable flag flipped, either way.",
         ("feature",), _nullability),
    Rule("FEATURE_DEFAULT_CHANGED", "minor", "A feature's default value changed.",
         ("feature",), _default),
    Rule("FEATURE_CONSTRAINT_RELAXED", "major",
         "A min lowered, a max raised, allowed values added, or a constraint removed: readers may see values they never saw.",
         ("feature",), _constraints("relaxed")),
    Rule("FEATURE_CONSTRAINT_TIGHTENED", "minor",
         "A min raised, a max lowered, allowed values removed, or a constraint added.",
         ("feature",), _constraints("tightened")),
    Rule("ENTITIES_CHANGED", "major", "The view's entity list changed: its rows are keyed differently.",
         ("feature_view",), _entities),
    Rule("TTL_DECREASED", "major", "The ttl was shortened (0 counts as infinite): values expire sooner.",
         ("feature_view",), _ttl(shorter=True)),
    Rule("TTL_INCREASED", "minor", "The ttl was lengthened.",
         ("feature_view",), _ttl(shorter=False)),
    Rule("SOURCE_CHANGED", "minor",
         "The view reads another source, or its source's definition changed.",
         ("feature_view", "source"), _source_changed),
    Rule("ONLINE_DISABLED", "major", "online went from true to false: online reads stop.",
         ("feature_view",), _online(enabled=False)),
    Rule("ONLINE_ENABLED", "minor", "online went from false to true.",
         ("feature_view",), _online(enabled=True)),
    Rule("METADATA_CHANGED", "patch", "description, owner, tags, freshness_sla or deprecated changed.",
         ("feature", "feature_view", "feature_service", "entity", "source"), _metadata),
    Rule("SERVICE_FEATURE_REMOVED", "major", "A feature service lost a feature reference.",
         ("feature_service",), _service_refs(removed=True)),
    Rule("SERVICE_FEATURE_ADDED", "minor", "A feature service gained a feature reference.",
         ("feature_service",), _service_refs(removed=False)),
    Rule("ENTITY_KEY_CHANGED", "major",
         "An entity's join_key or dtype changed (a violation, ENTITY_CHANGED_IN_USE, while an applied view uses it).",
         ("entity",), _entity_key),
)

RULES_BY_ID = {rule.id: rule for rule in CATALOG}


def rules_for(scope: Scope) -> tuple[Rule, ...]:
    return tuple(rule for rule in CATALOG if scope in rule.scopes)
