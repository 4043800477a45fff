"""Offline stores: where training data and materialization rows come from."""
from __future__ import annotations

from pathlib import Path

from featurectl.loading.config import DuckdbOfflineConfig
from featurectl.offline.base import OfflineStore
from featurectl.offline.duckdb import DuckDBOfflineStore

# One entry per `offline_store.type`; each class takes (repo root, its own config block).
STORES: dict[str, type] = {
    "duckdb": DuckDBOfflineStore,
}


def create_offline_store(config: DuckdbOfflineConfig, root: Path) -> OfflineStore:
    return STORES[config.type](root, config)
