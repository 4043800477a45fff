"""Online stores: the backend is chosen by the config block's `type` from one dict of classes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from featurectl.online.base import OnlineRows, OnlineStore, OnlineStoreError, OnlineTable


def _backends() -> dict[str, Any]:
    # Imported here so `featurectl.online.base` users don't pay for duckdb/redis imports.
    from featurectl.online.redis import RedisOnlineStore
    from featurectl.online.sqlite import SqliteOnlineStore

    return {"sqlite": SqliteOnlineStore, "redis": RedisOnlineStore}


def create_online_store(config: Any, root: Path) -> OnlineStore:
    """The store for one `online_store` config block; relative paths resolve against `root`."""
    backends = _backends()
    if config.type not in backends:
        raise OnlineStoreError(f"unknown online_store type {config.type!r}; use one of {', '.join(backends)}")
    return backends[config.type].from_config(config, Path(root))


__all__ = ["OnlineRows", "OnlineStore", "OnlineStoreError", "OnlineTable", "create_online_store"]
