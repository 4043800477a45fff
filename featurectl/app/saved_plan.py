"""Saved plan files: the JSON plan plus what is needed to apply exactly it later."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from featurectl.core.definitions import Definitions, check_references
from featurectl.core.errors import DefinitionError, Problem
from featurectl.core.plan import FORMAT_VERSION
from featurectl.render.plan_data import plan_to_dict
from featurectl.core.plan import Plan

# format_version -> function upgrading a file of that version to the next one.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def dump(plan: Plan, allow_removals: bool) -> str:
    data = plan_to_dict(plan)
    data["allow_removals"] = allow_removals
    data["desired"] = plan.desired.to_dict()
    return json.dumps(data, indent=2, default=str) + "\n"


def load(path: Path) -> dict[str, Any]:
    """Read a saved plan, upgrading older formats; raise DefinitionError on a bad file."""
    def bad(message: str, hint: str | None = None) -> DefinitionError:
        return DefinitionError([Problem(message, file=str(path), hint=hint)])

    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise bad(f"cannot read plan file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise bad(f"not a JSON plan file: {exc}", "write it with `featurectl plan --out FILE`") from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or "desired" not in data:
        raise bad("not a saved plan (no format_version or desired definitions)",
                  "write it with `featurectl plan --out FILE`")
    if version > FORMAT_VERSION:
        raise bad(f"plan format_version {version} is newer than this featurectl understands ({FORMAT_VERSION})",
                  "upgrade featurectl")
    while version < FORMAT_VERSION:
        data = UPGRADES[version](data)
        version = data["format_version"]
    return data


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
