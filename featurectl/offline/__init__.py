"""Offline stores: where training data and materialization rows come from."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from featurectl.backends import open_backend

if TYPE_CHECKING:
    from featurectl.offline.base import OfflineStore
    from featurectl.offline.config import OfflineConfig

# One entry per `offline_store.type`, imported on use so that plan and validate never load
# duckdb, pyarrow or pyspark (featurectl.backends).
BACKENDS = {"duckdb": "featurectl.offline.duckdb:DuckDBOfflineStore",
            "spark": "featurectl.offline.spark:SparkOfflineStore"}


def create_offline_store(config: OfflineConfig, root: Path) -> OfflineStore:
    """The store for one `offline_store` config block; relative paths resolve against `root`."""
    from featurectl.offline.base import OfflineStoreError

    store: OfflineStore = open_backend(BACKENDS, config, root, "offline_store", OfflineStoreError)
    return store


def __getattr__(name: str):
    # Reading featurectl.yaml imports `featurectl.offline.config`, and so this package, in every
    # command: the port's protocol and result classes load when a store is opened, not for an
    # online read (docs/benchmarks.md, stream imports).
    if name in ("OfflineStore", "OfflineStoreError"):
        from featurectl.offline import base

        return getattr(base, name)
    if name == "OfflineConfig":
        from featurectl.offline import config

        return config.OfflineConfig
    raise AttributeError(f"module 'featurectl.offline' has no attribute {name!r}")
