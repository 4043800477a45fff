"""Offline stores: where training data and materialization rows come from."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from featurectl.offline.base import OfflineStore


def stores() -> dict[str, Any]:
    """One entry per `offline_store.type`; each class takes (repo root, its own config block).
    Imported on use so that plan and validate never load duckdb or pyarrow."""
    from featurectl.offline.duckdb import DuckDBOfflineStore

    return {"duckdb": DuckDBOfflineStore}


def create_offline_store(config: Any, root: Path) -> OfflineStore:
    return stores()[config.type](root, config)
