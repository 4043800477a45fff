"""A module bound to a name now and imported when one of its names is first used.

For a driver that only some calls of a module need: `offline/duckdb.py` binds
`duckdb` so, and a push whose rows Arrow compute proves valid (offline/pushed.py) runs no
statement, so a server worker that only reads and takes such pushes never maps DuckDB's
library (~9 MB of resident memory per worker, and its heap). The import itself is Python's,
under its import lock, so threads that use the name first at once import the module once.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stands for the module `name`: the first attribute read imports it; each name read is
    then kept on this object, so later reads are plain attribute reads."""

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self.__name__), attr)
        setattr(self, attr, value)
        return value


def lazy_module(name: str) -> Any:
    return LazyModule(name)
