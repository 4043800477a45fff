"""The `offline_store:` blocks of featurectl.yaml, one model per backend `type`.

Kept free of engine imports: `plan` parses these without loading duckdb or pyarrow.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from featurectl.core.config import ConfigBlock


class DuckdbOfflineConfig(ConfigBlock):
    type: Literal["duckdb"] = "duckdb"
    threads: int | None = None
    memory_limit: str | None = None


OfflineConfig = Annotated[Union[DuckdbOfflineConfig], Field(discriminator="type")]
