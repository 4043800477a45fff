"""The `lineage:` block of featurectl.yaml. Kept free of the OpenLineage client: every command
parses the config, and only a materialization with this block loads the client."""
from __future__ import annotations

from pydantic import Field, field_validator

from featurectl.core.config import ConfigBlock


class LineageConfig(ConfigBlock):
    """The `lineage:` block of featurectl.yaml."""

    openlineage_url: str
    namespace: str = Field(min_length=1)
    endpoint: str = "api/v1/lineage"  # the OpenLineage HTTP API path below the URL
    timeout_seconds: float = Field(2.0, gt=0, le=60)

    @field_validator("openlineage_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL; write e.g. http://localhost:5000")
        return value
