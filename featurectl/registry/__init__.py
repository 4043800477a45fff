"""Registry backends, chosen by the `type` of the config's registry block."""
from __future__ import annotations

from pathlib import Path

from featurectl.backends import open_backend
from featurectl.registry.base import Registry, RegistryError
from featurectl.registry.config import RegistryConfig

# Imported on use (featurectl.backends): psycopg costs a quarter second that plan on SQLite should not pay.
BACKENDS = {
    "sqlite": "featurectl.registry.sqlite:SqliteRegistry",
    "postgres": "featurectl.registry.postgres:PostgresRegistry",
}


def create_registry(config: RegistryConfig, root: Path) -> Registry:
    """Open (creating on first use) the registry `config` describes; paths resolve against `root`."""
    registry: Registry = open_backend(BACKENDS, config, root, "registry", RegistryError)
    return registry
