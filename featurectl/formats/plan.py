"""The plan format (SPEC §4.1), version FORMAT_VERSION.

One explicit mapping from the core plan to JSON, used by `plan --format json`, the saved-plan
file (`plan --out`, which adds `allow_removals` and `desired`) and the `changes` stored with
every registry revision (and printed by `history --format json`). Keys are written out here
one by one, so renaming a field of a core dataclass cannot change what lands on disk.

Compatibility: adding an optional key keeps the version (readers ignore keys they do not
know); renaming, removing or changing the meaning of a key bumps FORMAT_VERSION, adds an
upgrade function to UPGRADES and a golden file of the old version under tests/data/.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from featurectl.core.diff import Item
from featurectl.core.durations import format_duration
from featurectl.core import plan as model

FORMAT_VERSION = 1

Document = dict[str, Any]

# format_version n -> function turning a document of version n into one of version n + 1.
UPGRADES: dict[int, Callable[[Document], Document]] = {}


class FormatError(ValueError):
    """A document that is not a readable plan of a known version."""

    def __init__(self, message: str, hint: str | None = None):
        self.hint = hint
        super().__init__(message)


# --- writing ------------------------------------------------------------------------------

def base_to_dict(base: model.Base) -> Document:
    if base.kind == "git":
        return {"kind": "git", "ref": base.ref}
    return {"kind": "registry", "revision": base.revision}


def item_to_dict(item: Item) -> Document:
    return {"rule": item.rule, "path": item.path, "bump": item.bump, "old": item.old, "new": item.new,
            "message": item.message}


def change_to_dict(change: model.Change) -> Document:
    data: Document = {
        "kind": change.kind, "name": change.name, "action": change.action,
        "from_version": change.from_version, "to_version": change.to_version,
        "required_bump": change.required_bump, "declared_bump": change.declared_bump,
        "valid": change.valid, "items": [item_to_dict(i) for i in change.items],
    }
    if change.impacted is not None:  # feature views only (SPEC §4.1)
        data["impacted"] = list(change.impacted)
    return data


def violation_to_dict(violation: model.Violation) -> Document:
    return {"rule": violation.rule, "kind": violation.kind, "name": violation.name, "message": violation.message}


def summary_to_dict(plan: model.Plan) -> Document:
    summary = plan.summary
    return {key: summary[key] for key in ("add", "update", "remove", "unchanged", "violations", "warnings")}


def plan_to_dict(plan: model.Plan) -> Document:
    return {
        "format_version": FORMAT_VERSION,
        "project": plan.project,
        "base": base_to_dict(plan.base),
        "valid": plan.valid,
        "summary": summary_to_dict(plan),
        "changes": revision_changes(plan),
        "violations": [violation_to_dict(v) for v in plan.violations],
        "warnings": [violation_to_dict(w) for w in plan.warnings],
        "notes": [follow_up_message(f) for f in plan.follow_ups],
        "follow_ups": [follow_up_to_dict(f) for f in plan.follow_ups],
    }


def follow_up_to_dict(follow_up: model.FollowUp) -> Document:
    """`type` names the follow-up; `message` is the same sentence as in `notes`."""
    fields, message = _follow_up(follow_up)
    return {**fields, "message": message}


def follow_up_message(follow_up: model.FollowUp) -> str:
    """The one wording of each follow-up, for the JSON `notes` and the text and markdown plans."""
    return _follow_up(follow_up)[1]


def _follow_up(follow_up: model.FollowUp) -> tuple[Document, str]:
    """Each kind of follow-up once: its JSON fields and its sentence."""
    match follow_up:
        case model.NewMajorStartsEmpty(view=view, major=major):
            return ({"type": "new_major_starts_empty", "view": view, "major": major},
                    f"feature view '{view}' moves to major version {major}: its online data starts empty; "
                    f"run `featurectl materialize` after apply")
        case model.OldMajorDataRetained(view=view, major=major):
            return ({"type": "old_major_data_retained", "view": view, "major": major},
                    f"feature view '{view}' keeps its major {major} online data for readers pinned to "
                    f"`{view}@{major}`; drop it with `featurectl prune` once none is left")
        case model.TtlIncreasedNeedsRematerialize(view=view, ttl_seconds=ttl):
            span = f"the last {format_duration(ttl)}" if ttl else "its whole history"
            return ({"type": "ttl_increased_needs_rematerialize", "view": view, "ttl": format_duration(ttl)},
                    f"feature view '{view}' keeps values longer now, but its online store holds only what materialization "
                    f"loaded under the old ttl (a first `materialize-incremental` starts the ttl before END); "
                    f"rematerialize {span} to serve older values")
    raise TypeError(f"unknown follow-up {follow_up!r}")


def revision_changes(plan: model.Plan) -> list[Document]:
    """What a registry revision stores as its `changes`: the plan's changes, same format."""
    return [change_to_dict(c) for c in plan.changes]


def saved_plan_to_dict(plan: model.Plan) -> Document:
    """The saved-plan file: the JSON plan plus what applying exactly it later needs."""
    return {**plan_to_dict(plan), "allow_removals": plan.allow_removals, "desired": plan.desired.to_dict()}


def to_json(data: Document | list[Document]) -> str:
    """The one JSON text style of the format (values that JSON lacks are written as strings)."""
    return json.dumps(data, indent=2, default=str)


# --- reading ------------------------------------------------------------------------------

def upgrade(data: Any) -> Document:
    """A plan document of any known version, brought to FORMAT_VERSION."""
    version = data.get("format_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise FormatError("not a plan document (no integer format_version)", "write it with `featurectl plan --out FILE`")
    if version > FORMAT_VERSION:
        raise FormatError(f"plan format_version {version} is newer than this featurectl understands "
                          f"({FORMAT_VERSION})", "upgrade featurectl")
    if version < 1 or (version < FORMAT_VERSION and version not in UPGRADES):
        raise FormatError(f"plan format_version {version} is not one featurectl ever wrote",
                          "make the plan again with `featurectl plan --out FILE`")
    while version < FORMAT_VERSION:
        data = UPGRADES[version](data)
        version = data["format_version"]
    return data


def load_saved_plan(text: str) -> Document:
    """Parse and upgrade a saved-plan file; FormatError says what is wrong with it."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not a JSON plan file: {exc}", "write it with `featurectl plan --out FILE`") from None
    if not isinstance(data, dict) or not isinstance(data.get("format_version"), int) or "desired" not in data:
        raise FormatError("not a saved plan (no format_version or desired definitions)",
                          "write it with `featurectl plan --out FILE`")
    return upgrade(data)
