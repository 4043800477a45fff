"""The base of every featurectl.yaml block model, shared by loading and each store's config."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigBlock(BaseModel):
    """A block of featurectl.yaml: unknown keys are errors, and a parsed block never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
