"""The `online_store:` blocks of featurectl.yaml, one model per backend `type`.

Kept free of client imports: `plan` parses these without loading redis, duckdb or pyarrow.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from featurectl.core.config import ConfigBlock

_NODE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[^\s:/@\[\]]+):(\d{1,5})$")


class SqliteOnlineConfig(ConfigBlock):
    type: Literal["sqlite"] = "sqlite"
    path: str = ".featurectl/online.db"


class RedisOnlineConfig(ConfigBlock):
    """One redis-server (`url`), or a Redis Cluster: `cluster: true` with the URL of any node,
    or `nodes: [host:port, ...]` (docs/decisions.md, "Redis Cluster")."""

    type: Literal["redis"]
    url: str = "redis://localhost:6379/0"
    cluster: bool = False
    nodes: Optional[tuple[str, ...]] = None
    # Opt-in Redis-side expiry: each key expires this long after its last write (memory is
    # reclaimed); None keeps keys until rewritten or deleted. Reads always apply the view's ttl.
    key_ttl_seconds: Optional[int] = Field(None, gt=0, le=100 * 365 * 86400)
    # Seconds: a server that does not answer is a store failure (exit 3) after this long.
    connect_timeout: float = Field(5.0, gt=0)
    timeout: float = Field(10.0, gt=0)

    @field_validator("nodes")
    @classmethod
    def _nodes_are_host_port(cls, nodes: Optional[tuple[str, ...]]) -> Optional[tuple[str, ...]]:
        if nodes is None:
            return None
        if not nodes:
            raise ValueError("list at least one cluster node as \"host:port\", or drop `nodes`")
        for node in nodes:
            match = _NODE.match(node)
            if not match or not 0 < int(match.group(1)) < 65536:
                raise ValueError(f"cluster node {node!r} is not \"host:port\" (e.g. \"10.0.0.5:6379\"); "
                                 "give a password with `url: redis://:PASSWORD@host:port` and `cluster: true`")
        return nodes

    @model_validator(mode="after")
    def _one_way_to_name_the_cluster(self) -> "RedisOnlineConfig":
        if self.nodes is not None:
            if "url" in self.model_fields_set:
                raise ValueError("give either `url` (with `cluster: true` for a cluster) or `nodes`, not both")
            if "cluster" in self.model_fields_set and not self.cluster:
                raise ValueError("`nodes` names a Redis Cluster; drop `cluster: false` (or `nodes`, for one server)")
        return self

    @property
    def is_cluster(self) -> bool:
        return self.cluster or self.nodes is not None


OnlineConfig = Annotated[Union[SqliteOnlineConfig, RedisOnlineConfig], Field(discriminator="type")]
