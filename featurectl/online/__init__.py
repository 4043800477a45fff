"""Online stores: the backend is chosen by the config block's `type` from one dict of classes."""
from __future__ import annotations

from pathlib import Path

from featurectl.backends import open_backend
from featurectl.online.base import OnlineRows, OnlineStore, OnlineStoreError, OnlineTable
from featurectl.online.config import OnlineConfig

# Imported on use (featurectl.backends), so `featurectl.online.base` users don't pay for duckdb/redis.
BACKENDS = {
    "sqlite": "featurectl.online.sqlite:SqliteOnlineStore",
    "redis": "featurectl.online.redis:RedisOnlineStore",
}


def create_online_store(config: OnlineConfig, root: Path) -> OnlineStore:
    """The store for one `online_store` config block; relative paths resolve against `root`."""
    store: OnlineStore = open_backend(BACKENDS, config, root, "online_store", OnlineStoreError)
    return store


__all__ = ["OnlineRows", "OnlineStore", "OnlineStoreError", "OnlineTable", "create_online_store"]
