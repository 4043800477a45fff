"""Policy outcomes: verdicts on a plan (not classifications of a change), as a table.

Each outcome has a stable id, a severity, a one-line purpose and the template of its
message; the policy (featurectl.core.policy), the reference check and apply fill the
templates, and `featurectl rules` and docs/rules.md list the table. The ids appear here
only: code refers to the Outcome objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# violation: the plan is invalid (exit 1); warning: reported, the plan stays valid;
# error: the definitions themselves are wrong (exit 2), before any plan is made.
Severity = Literal["violation", "warning", "error"]


@dataclass(frozen=True)
class Outcome:
    id: str
    severity: Severity
    purpose: str
    template: str  # str.format fields, filled by message()

    def message(self, **fields: Any) -> str:
        return self.template.format(**fields)


VERSION_BUMP_TOO_SMALL = Outcome(
    "VERSION_BUMP_TOO_SMALL", "violation",
    "The declared version is below what the required bump allows from the applied version.",
    "{label} '{name}' {applied} -> {declared} needs a {required} bump: declare >= {floor}")
VERSION_DECREASED = Outcome(
    "VERSION_DECREASED", "violation", "The declared version is lower than the applied one.",
    "{label} '{name}' version decreased from {applied} to {declared}; declare >= {floor}")
VERSION_UNCHANGED = Outcome(
    "VERSION_UNCHANGED", "violation", "The object changed but its version did not.",
    "{label} '{name}' changed but its version is still {applied}; it needs a {required} bump: declare >= {floor}")
VERSION_BUMP_WITHOUT_CHANGE = Outcome(
    "VERSION_BUMP_WITHOUT_CHANGE", "warning", "The version was raised although nothing changed (allowed).",
    "{label} '{name}' version bumped {applied} -> {declared} with no classified change")
OBJECT_REMOVED = Outcome(
    "OBJECT_REMOVED", "violation",
    "A feature view or service was removed without being deprecated first (or --allow-removals).",
    "{label} '{name}' removed without being deprecated: set `deprecated: true`, apply, then remove it; "
    "or pass --allow-removals")
ENTITY_CHANGED_IN_USE = Outcome(
    "ENTITY_CHANGED_IN_USE", "violation", "An entity's join_key or dtype changed while an applied view uses it.",
    "entity '{name}' join_key/dtype changed while applied views use it ({views}); "
    "define a new entity and move the views to it instead")
DANGLING_REFERENCE = Outcome(
    "DANGLING_REFERENCE", "error",
    "A reference names an entity, source, view or feature that does not exist (exit 2).",
    "{target} does not exist{where}")
STALE_PLAN = Outcome(
    "STALE_PLAN", "violation", "A saved plan was made at a registry revision that has since moved.",
    "{plan} was made at registry revision {made}, the registry is now at revision {now}; {fix}")

POLICY_OUTCOMES: tuple[Outcome, ...] = (
    VERSION_BUMP_TOO_SMALL, VERSION_DECREASED, VERSION_UNCHANGED, VERSION_BUMP_WITHOUT_CHANGE,
    OBJECT_REMOVED, ENTITY_CHANGED_IN_USE, DANGLING_REFERENCE, STALE_PLAN,
)
