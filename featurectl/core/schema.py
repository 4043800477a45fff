"""The JSON Schema of a YAML definition file, generated from the model itself."""
from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field

from featurectl.core.model import Entity, FeatureService, FeatureView, FileSource, QuerySource


class DefinitionFile(BaseModel):
    """A YAML definition file: any subset of the four top-level keys."""

    model_config = ConfigDict(extra="forbid", title="featurectl definitions")
    entities: list[Entity] = Field(default_factory=list)
    sources: list[Union[FileSource, QuerySource]] = Field(default_factory=list)
    feature_views: list[FeatureView] = Field(default_factory=list)
    feature_services: list[FeatureService] = Field(default_factory=list)


def definition_schema() -> dict[str, Any]:
    schema = DefinitionFile.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
