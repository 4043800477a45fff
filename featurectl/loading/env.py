"""${NAME} references in featurectl.yaml.

Accepted: `${NAME}`, `${NAME:-default}` (the default when NAME is unset or empty) and `$$` for
a literal `$`. Any other `$` (`$HOME`, `${1}`, `${NAME-x}`) is refused rather than taken
literally: a literal `$HOME/registry.db` silently creates a directory named `$HOME`."""
from __future__ import annotations

import os
import re
from typing import Any

from featurectl.core.errors import DefinitionError, Problem

# Store blocks may hold secrets (DSNs, URLs with passwords): a message never quotes their text.
STORE_BLOCKS = ("registry", "offline_store", "online_store")
_REFERENCE = re.compile(r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}$]*))?\}|(?P<dollar>\$)|)")


def has_references(value: Any) -> bool:
    return "$" in str(value)


def expand_env(value: Any, file: str, *, strict: bool = True, block: str | None = None) -> Any:
    """Replace every reference in every string of `value`. Lenient expansion leaves unset
    variables in place, so a command that never opens a store (validate, plan --against) does
    not need that store's secrets; malformed references are refused either way."""
    if isinstance(value, dict):
        return {k: expand_env(v, file, strict=strict, block=block) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, file, strict=strict, block=block) for v in value]
    if isinstance(value, str):
        return _REFERENCE.sub(lambda m: _substitute(m, value, file, strict, block), value)
    return value


def _substitute(match: re.Match[str], text: str, file: str, strict: bool, block: str | None) -> str:
    if match.group("dollar"):
        return "$"
    name = match.group("name")
    if name is None:
        what = f"the $ at character {match.start() + 1}" if block in STORE_BLOCKS else f"'{_around(text, match.start())}'"
        raise DefinitionError([Problem(
            f"{what} is not a reference featurectl expands",
            file=file, kind="config" if block else None, name=block, field=block,
            hint="write ${NAME} or ${NAME:-default} for an environment variable, and $$ for a literal $")])
    value = os.environ.get(name)
    if value:
        return value
    default = match.group("default")
    if default is not None:
        return default
    if value is not None:  # set but empty, and no default
        return value
    if not strict:
        return match.group(0)
    raise DefinitionError([Problem(
        f"environment variable {name} is not set", file=file, kind="config", name=block, field=block,
        hint=f"export {name}=..., give a default as ${{{name}:-default}}, or remove ${{{name}}} from the config")])


def _around(text: str, start: int) -> str:
    """The malformed reference as written: `$HOME`, `${HOME`, `$1`."""
    found = re.match(r"\$(\{[^}]*\}?|[A-Za-z0-9_]*)", text[start:])
    return found.group(0) if found else "$"
