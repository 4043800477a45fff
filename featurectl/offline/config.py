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


class SparkOfflineConfig(ConfigBlock):
    """Apache Spark (pyspark, the `featurectl[spark]` extra); docs/spark.md."""

    type: Literal["spark"] = "spark"
    master: str = "local[*]"  # any Spark master URL: local[N], spark://, yarn, k8s://
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)  # handed to the session builder
    # Spark's own log, written with the JVM's output to $TMPDIR/featurectl-spark-<pid>.log
    log_level: Literal["OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG"] = "WARN"


OfflineConfig = Annotated[Union[DuckdbOfflineConfig, SparkOfflineConfig], Field(discriminator="type")]
