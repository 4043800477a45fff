"""The one way to build a store backend, for all three ports (registry, offline, online).

Each port package keeps a `BACKENDS` dict from a config block's `type` to the class that
implements it, written as ``"module:Class"`` so that only the chosen backend's module (and
its driver) is imported, when a store is first opened: `plan` never loads the data stack.
Every backend class has ``from_config(config, root)``, which receives only its own block of
featurectl.yaml and the repository root (relative paths resolve against it), and ``close()``.
"""
from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any


def config_path(value: str | Path, root: Path) -> Path:
    """A path written in featurectl.yaml: `~` is the user's home directory (as in a shell), and
    a relative path is relative to the repository root, wherever the command runs from."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(root) / path


def backend_class(backends: Mapping[str, str], type_: str, port: str, error: type[Exception]) -> Any:
    """The class registered for `type_`, its module imported now."""
    if type_ not in backends:
        raise error(f"unknown {port} type {type_!r}; use one of {', '.join(backends)}")
    module, _, name = backends[type_].partition(":")
    return getattr(import_module(module), name)


def open_backend(backends: Mapping[str, str], config: Any, root: Path, port: str, error: type[Exception]) -> Any:
    """Open the backend a config block describes: ``BACKENDS[config.type].from_config(config, root)``."""
    return backend_class(backends, config.type, port, error).from_config(config, Path(root))
