"""Plain data views of core results for the renderers: the rule catalog."""
from __future__ import annotations

from featurectl.core.outcomes import POLICY_OUTCOMES
from featurectl.core.rules import CATALOG


def catalog_rows() -> list[dict[str, str]]:
    """Change rules, then policy outcomes (which add their severity and message template)."""
    rows = [{"id": r.id, "bump": r.bump, "kind": "change", "applies_to": ", ".join(r.scopes),
             "purpose": r.purpose} for r in CATALOG]
    rows += [{"id": o.id, "bump": "-", "kind": "policy", "applies_to": "plan", "purpose": o.purpose,
              "severity": o.severity, "message": o.template} for o in POLICY_OUTCOMES]
    return rows
