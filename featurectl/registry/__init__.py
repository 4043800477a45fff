"""Registry backends, chosen by the `type` of the config's registry block."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from featurectl.registry.base import Registry


def backends() -> dict[str, Any]:
    # Imported on use: psycopg costs a quarter second that plan on SQLite should not pay.
    from featurectl.registry.postgres import PostgresRegistry
    from featurectl.registry.sqlite import SqliteRegistry

    return {"sqlite": SqliteRegistry, "postgres": PostgresRegistry}


def create_registry(config: Any, root: Path) -> Registry:
    """Open (creating on first use) the registry `config` describes; paths resolve against `root`."""
    if config.type == "sqlite":  # the default path stays free of the PostgreSQL driver
        from featurectl.registry.sqlite import SqliteRegistry
        return SqliteRegistry.from_config(config, root)
    return backends()[config.type].from_config(config, root)
