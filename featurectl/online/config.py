"""The `online_store:` blocks of featurectl.yaml, one model per backend `type`.

Kept free of client imports: `plan` parses these without loading redis, duckdb or pyarrow.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from featurectl.core.config import ConfigBlock


class SqliteOnlineConfig(ConfigBlock):
    type: Literal["sqlite"] = "sqlite"
    path: str = ".featurectl/online.db"


class RedisOnlineConfig(ConfigBlock):
    type: Literal["redis"]
    url: str = "redis://localhost:6379/0"


OnlineConfig = Annotated[Union[SqliteOnlineConfig, RedisOnlineConfig], Field(discriminator="type")]
