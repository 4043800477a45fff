"""YAML loading that refuses a key written twice in one mapping (PyYAML keeps the last one
silently, so a second `ttl:` would quietly win over the first)."""
from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

from featurectl.core.errors import Problem

# libyaml when available: the pure-Python parser dominates plan time on large repositories.
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    pass


class StrictLoader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """SafeLoader that raises on a duplicate key, naming the key and its line."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *base` may be overridden by the mapping's own keys
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if first is not None:
                raise DuplicateKeyError(None, None, f"duplicate key '{key}' (first at line {first})",
                                       key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse one YAML document; yaml.YAMLError (with problem_mark) on bad syntax or a duplicate key."""
    return yaml.load(text, Loader=StrictLoader)


def yaml_problem(exc: yaml.YAMLError, file: str) -> Problem:
    """The problem a YAML error is, at its line."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark else None
    if isinstance(exc, DuplicateKeyError):
        return Problem(str(exc.problem), file=file, line=line, hint="a key appears once per mapping: remove or rename one")
    return Problem(f"malformed YAML: {getattr(exc, 'problem', None) or exc}", file=file, line=line,
                   hint="fix the YAML syntax at that line")
