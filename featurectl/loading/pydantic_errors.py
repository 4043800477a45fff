"""Turn pydantic's ValidationError into Problems that name file, object and field."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from featurectl.core.errors import Problem

_HINTS = {
    "missing": "add the field",
    "extra_forbidden": "remove the field or fix its spelling",
    "string_pattern_mismatch": "use letters, digits and underscores, starting with a letter or underscore",
    "too_short": "give at least one value",
}


def field_path(loc: tuple[Any, ...], obj: Any = None) -> str:
    """'features.conv_rate.dtype' rather than 'features.0.dtype' where the name is known."""
    parts: list[str] = []
    node = obj
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            entry = node[item]
            label = entry.get("name") if isinstance(entry, dict) else getattr(entry, "name", None)
            parts.append(str(label) if isinstance(label, str) else str(item))
            node = entry
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else getattr(node, str(item), None)
    return ".".join(parts)


def problems_from_validation(
    exc: ValidationError, *, file: str | None, kind: str | None = None, name: str | None = None,
    data: Any = None, line: int | None = None,
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        problems.append(Problem(
            message=message, file=file, kind=kind, name=name,
            field=field_path(loc, data) or None, hint=_HINTS.get(err["type"]), line=line,
        ))
    return problems
