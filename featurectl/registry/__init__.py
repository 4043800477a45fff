"""Registry backends, chosen by the `type` of the config's registry block."""
from __future__ import annotations

from pathlib import Path

from featurectl.loading.config import PostgresRegistryConfig, SqliteRegistryConfig
from featurectl.registry.base import Registry
from featurectl.registry.postgres import PostgresRegistry
from featurectl.registry.sqlite import SqliteRegistry

BACKENDS = {
    "sqlite": SqliteRegistry,
    "postgres": PostgresRegistry,
}


def create_registry(config: SqliteRegistryConfig | PostgresRegistryConfig, root: Path) -> Registry:
    """Open (creating on first use) the registry `config` describes; paths resolve against `root`."""
    return BACKENDS[config.type].from_config(config, root)
