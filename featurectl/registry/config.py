"""The `registry:` blocks of featurectl.yaml, one model per backend `type`.

Kept free of driver imports: `plan` parses these without loading sqlite3 or psycopg code.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from featurectl.core.config import ConfigBlock


class SqliteRegistryConfig(ConfigBlock):
    type: Literal["sqlite"] = "sqlite"
    path: str = ".featurectl/registry.db"


class PostgresRegistryConfig(ConfigBlock):
    type: Literal["postgres"]
    dsn: str
    schema_name: str = Field("featurectl", alias="schema", pattern=r"^[a-z_][a-z0-9_]*$")
    # Seconds: connecting (libpq connect_timeout) and each statement (statement_timeout).
    connect_timeout: float = Field(5.0, gt=0)
    timeout: float = Field(10.0, gt=0)


RegistryConfig = Annotated[Union[SqliteRegistryConfig, PostgresRegistryConfig], Field(discriminator="type")]
