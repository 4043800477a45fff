"""Saved plan files: the JSON plan plus what is needed to apply exactly it later."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from featurectl.core.definitions import Definitions, check_references
from featurectl.core.errors import DefinitionError, Problem
from featurectl.core.plan import Plan
from featurectl.formats import plan as plan_format
from featurectl.formats.plan import FORMAT_VERSION

__all__ = ["FORMAT_VERSION", "dump", "load", "desired_of"]


def dump(plan: Plan) -> str:
    return plan_format.to_json(plan_format.saved_plan_to_dict(plan)) + "\n"


def load(path: Path) -> dict[str, Any]:
    """Read a saved plan, upgrading older formats; raise DefinitionError on a bad file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DefinitionError([Problem(f"cannot read plan file: {exc.strerror}", file=str(path))]) from None
    try:
        return plan_format.load_saved_plan(text)
    except plan_format.FormatError as exc:
        raise DefinitionError([Problem(str(exc), file=str(path), hint=exc.hint)]) from None


def desired_of(data: dict[str, Any], path: Path) -> Definitions:
    hint = "make the plan again with `featurectl plan --out`"
    try:
        desired = Definitions.from_dict(data["desired"])
    except Exception as exc:  # pydantic or shape errors: the file was edited or corrupted
        raise DefinitionError([Problem(f"the plan's desired definitions are invalid: {exc}", file=str(path),
                                       field="desired", hint=hint)]) from None
    # The files were checked when the plan was made, but an edited plan file must not smuggle
    # dangling references into the registry.
    problems = check_references(desired)
    if problems:
        raise DefinitionError([replace(p, file=str(path), hint=hint) for p in problems])
    return desired
