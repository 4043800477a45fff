"""Offline stores: where training data and materialization rows come from."""
from __future__ import annotations

from pathlib import Path

from featurectl.backends import open_backend
from featurectl.offline.base import OfflineStore, OfflineStoreError
from featurectl.offline.config import OfflineConfig

# One entry per `offline_store.type`, imported on use so that plan and validate never load
# duckdb, pyarrow or pyspark (featurectl.backends).
BACKENDS = {"duckdb": "featurectl.offline.duckdb:DuckDBOfflineStore",
            "spark": "featurectl.offline.spark:SparkOfflineStore"}


def create_offline_store(config: OfflineConfig, root: Path) -> OfflineStore:
    """The store for one `offline_store` config block; relative paths resolve against `root`."""
    store: OfflineStore = open_backend(BACKENDS, config, root, "offline_store", OfflineStoreError)
    return store
