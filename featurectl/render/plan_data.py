"""Plain data views of core results for the renderers: the rule catalog."""
from __future__ import annotations

from featurectl.core.rules import CATALOG, POLICY_RULES


def catalog_rows() -> list[dict[str, str]]:
    rows = [{"id": r.id, "bump": r.bump, "kind": "change", "applies_to": ", ".join(r.scopes),
             "purpose": r.purpose} for r in CATALOG]
    rows += [{"id": rid, "bump": "-", "kind": "policy", "applies_to": "plan", "purpose": purpose}
             for rid, purpose in POLICY_RULES]
    return rows
