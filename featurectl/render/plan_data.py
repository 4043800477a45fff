"""Plain data views of core results: the JSON plan of SPEC §4.1 and the rule catalog."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from featurectl.core.plan import FORMAT_VERSION, Change, Plan
from featurectl.core.rules import CATALOG, POLICY_RULES


def base_to_dict(plan: Plan) -> dict[str, Any]:
    if plan.base.kind == "git":
        return {"kind": "git", "ref": plan.base.ref}
    return {"kind": "registry", "revision": plan.base.revision}


def change_to_dict(change: Change) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": change.kind, "name": change.name, "action": change.action,
        "from_version": change.from_version, "to_version": change.to_version,
        "required_bump": change.required_bump, "declared_bump": change.declared_bump,
        "valid": change.valid, "items": [asdict(item) for item in change.items],
    }
    if change.impacted is not None:
        data["impacted"] = list(change.impacted)
    return data


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "project": plan.project,
        "base": base_to_dict(plan),
        "valid": plan.valid,
        "summary": plan.summary,
        "changes": [change_to_dict(c) for c in plan.changes],
        "violations": [asdict(v) for v in plan.violations],
        "warnings": [asdict(w) for w in plan.warnings],
        "notes": list(plan.notes),
    }


def catalog_rows() -> list[dict[str, str]]:
    rows = [{"id": r.id, "bump": r.bump, "kind": "change", "applies_to": ", ".join(r.scopes),
             "purpose": r.purpose} for r in CATALOG]
    rows += [{"id": rid, "bump": "-", "kind": "policy", "applies_to": "plan", "purpose": purpose}
             for rid, purpose in POLICY_RULES]
    return rows
