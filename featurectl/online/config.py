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
    # Seconds: a server that does not answer is a store failure (exit 3) after this long.
    connect_timeout: float = Field(5.0, gt=0)
    timeout: float = Field(10.0, gt=0)


OnlineConfig = Annotated[Union[SqliteOnlineConfig, RedisOnlineConfig], Field(discriminator="type")]
