"""The definitions model: entities, sources, feature views, features and feature services.

The same classes serve YAML (validated from dicts) and Python definition files
(constructed directly). Objects are frozen; references between objects are by name,
and Python users may pass the object itself, which is reduced to its name.
"""
from __future__ import annotations

import functools
import math
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Union, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from featurectl.core.dtypes import ENTITY_KEY_TYPES, NUMERIC, element_type, parse_dtype
from featurectl.core.durations import format_duration, parse_duration

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# The kinds of definition object, in dependency order (a view needs its entities and source).
Kind = Literal["entity", "source", "feature_view", "feature_service"]
KINDS: tuple[Kind, ...] = ("entity", "source", "feature_view", "feature_service")


# SemVer 2.0.0 (semver.org): MAJOR.MINOR.PATCH without leading zeros, then an optional
# pre-release (dot-separated; a numeric identifier without leading zeros) and build metadata.
# The semver package compares versions (core/bumps.py); it is imported there, not by every
# command that reads definitions (tests/unit/test_model.py checks both accept the same).
_NUMBER = r"0|[1-9][0-9]*"
_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
SEMVER = re.compile(rf"^({_NUMBER})\.(?:{_NUMBER})\.(?:{_NUMBER})"
                    rf"(?:-{_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*)?(?:\+{_BUILD_ID}(?:\.{_BUILD_ID})*)?\Z")


def _check_version(value: object) -> str:
    text = str(value).strip()
    if SEMVER.match(text) is None:
        raise ValueError(f"invalid semantic version {value!r}; write MAJOR.MINOR.PATCH, e.g. 1.0.0")
    return text


def _name_of(value: object) -> object:
    """Python definitions may reference an object itself instead of its name."""
    return getattr(value, "name", value)


Name = Annotated[str, Field(pattern=NAME_PATTERN)]
DType = Annotated[str, BeforeValidator(parse_dtype), WithJsonSchema({
    "type": "string", "description": "bool, int32, int64, float32, float64, string, bytes, timestamp, or list<T>",
    "pattern": r"^(bool|int32|int64|float32|float64|string|bytes|timestamp|list<(bool|int32|int64|float32|float64|string|bytes|timestamp)>)$",
})]
Version = Annotated[str, BeforeValidator(_check_version), WithJsonSchema({
    "type": "string", "description": "semantic version MAJOR.MINOR.PATCH",
    "pattern": r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$",
})]
Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"description": "30s, 15m, 36h, 7d, 2w, or 0 (no expiry)",
                    "anyOf": [{"type": "string", "pattern": r"^(0|\d+[smhdw])$"}, {"const": 0}]}),
]
Ref = Annotated[str, BeforeValidator(_name_of)]


@functools.cache
def _any_adapter() -> TypeAdapter[Any]:
    """Built on first use: most values are JSON already (`_json_value`), and a command that
    reads definitions should not build a schema it never needs."""
    return TypeAdapter(Any)


def _json_value(value: object) -> object:
    """A value as the canonical (JSON) form holds it. YAML reads `2024-01-01` as a date and the
    registry gives back a string: normalising on input keeps the two equal (no phantom change)."""
    if value is None or type(value) in (str, int, bool) or (type(value) is float and math.isfinite(value)):
        return value  # already JSON: the common case, kept off pydantic's slower path
    return _any_adapter().dump_python(value, mode="json")


JsonValue = Annotated[Any, BeforeValidator(_json_value)]
Scalar = Union[bool, int, float, str]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, defer_build=True)
    kind: ClassVar[str]


class Constraints(_Model):
    min: float | None = None
    max: float | None = None
    allowed: list[Annotated[Scalar, BeforeValidator(_json_value)]] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Constraints":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self

    def is_empty(self) -> bool:
        return self.min is None and self.max is None and self.allowed is None


class Feature(_Model):
    name: Name
    dtype: DType
    description: str = ""
    nullable: bool = True
    default: JsonValue = None
    constraints: Constraints | None = None

    @model_validator(mode="after")
    def _values_fit_dtype(self) -> "Feature":
        base = element_type(self.dtype) or self.dtype
        if self.default is not None:
            values = self.default if element_type(self.dtype) and isinstance(self.default, list) else [self.default]
            if (element_type(self.dtype) and not isinstance(self.default, list)) or \
                    not all(v is None or fits_dtype(v, base) for v in values):
                raise ValueError(f"default {self.default!r} is not a valid {self.dtype}")
        c = self.constraints
        if c is None:
            return self
        if (c.min is not None or c.max is not None) and base not in NUMERIC:
            raise ValueError(f"min/max constraints need a numeric dtype, not {self.dtype}")
        wrong = [v for v in c.allowed or () if not fits_dtype(v, base)]
        if wrong:
            raise ValueError(f"allowed value(s) {wrong!r} are not valid {base} values")
        return self


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,), "int32": (int,), "int64": (int,), "float32": (int, float), "float64": (int, float),
    "string": (str,), "bytes": (str,), "timestamp": (str,),
}
_INT_RANGE = {"int32": 2**31, "int64": 2**63}


def fits_dtype(value: object, dtype: str) -> bool:
    """Whether a value written in a definition (as JSON holds it) is a value of a scalar dtype."""
    if isinstance(value, bool) and dtype != "bool":
        return False
    if not isinstance(value, _PYTHON_TYPES[dtype]):
        return False
    if dtype in _INT_RANGE:
        return isinstance(value, int) and -_INT_RANGE[dtype] <= value < _INT_RANGE[dtype]
    if dtype == "timestamp":
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return False
    return True


class Entity(_Model):
    kind: ClassVar[str] = "entity"
    name: Name
    join_key: Name
    dtype: DType = "int64"
    description: str = ""

    @field_validator("dtype")
    @classmethod
    def _key_type(cls, value: str) -> str:
        if value not in ENTITY_KEY_TYPES:
            raise ValueError(f"an entity key must be one of {', '.join(ENTITY_KEY_TYPES)}, not {value}")
        return value


class _Source(_Model):
    kind: ClassVar[str] = "source"
    name: Name
    timestamp_field: Name
    created_timestamp_field: Name | None = None
    description: str = ""


class FileSource(_Source):
    """Parquet or CSV file(s); `path` may be a glob, relative to the repository root."""

    path: str

    @field_validator("path")
    @classmethod
    def _file_type(cls, value: str) -> str:
        if not value.lower().endswith((".parquet", ".csv", ".pq")):
            raise ValueError(f"path {value!r} must end in .parquet or .csv")
        return value


class QuerySource(_Source):
    """A DuckDB SQL query producing the source rows."""

    query: str


Source = Union[FileSource, QuerySource]


class FeatureView(_Model):
    kind: ClassVar[str] = "feature_view"
    name: Name
    version: Version
    entities: list[Ref] = Field(min_length=1)
    source: Ref
    owner: str = Field(min_length=1)
    features: list[Feature] = Field(min_length=1)
    ttl: Duration = 0
    online: bool = True
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    freshness_sla: Duration | None = None
    deprecated: bool = False

    @field_validator("features")
    @classmethod
    def _unique_features(cls, features: list[Feature]) -> list[Feature]:
        seen: set[str] = set()
        for feature in features:
            if feature.name in seen:
                raise ValueError(f"feature {feature.name!r} is declared twice")
            seen.add(feature.name)
        return features

    @field_validator("entities")
    @classmethod
    def _unique_entities(cls, entities: list[str]) -> list[str]:
        if len(set(entities)) != len(entities):
            raise ValueError("an entity is listed twice")
        return entities

    @property
    def major(self) -> int:
        match = SEMVER.match(self.version)
        assert match is not None  # validated
        return int(match.group(1))

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)


class FeatureService(_Model):
    kind: ClassVar[str] = "feature_service"
    name: Name
    version: Version
    owner: str = Field(min_length=1)
    features: list[str] = Field(min_length=1)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    deprecated: bool = False

    @field_validator("features")
    @classmethod
    def _refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            parse_ref(ref)
        if len(set(refs)) != len(refs):
            raise ValueError("a feature reference is listed twice")
        return refs


class FeatureRef(NamedTuple):
    """`view:feature`, `view:*`, or pinned to a major version: `view@2:feature`, `view@2:*`."""

    view: str
    major: int | None  # None: the applied (newest) major
    feature: str  # a feature name or '*'


_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:@(0|[1-9][0-9]{0,8}))?:(\*|[A-Za-z_][A-Za-z0-9_]*)$")


def parse_feature_ref(ref: str) -> FeatureRef:
    """Parse one reference; raise ValueError on a malformed one."""
    match = _REF.match(str(ref))
    if match is None:
        raise ValueError(f"invalid feature reference {ref!r}; write 'view:feature', 'view:*' "
                         "or, pinned to a major version, 'view@2:feature'")
    view, major, feature = match.groups()
    return FeatureRef(view, None if major is None else int(major), feature)


def parse_ref(ref: str) -> tuple[str, str]:
    """(view, feature) of 'view:feature', 'view:*' or 'view@N:...'; ValueError when malformed."""
    parsed = parse_feature_ref(ref)
    return parsed.view, parsed.feature


MODELS: dict[str, tuple[type[_Model], ...]] = {
    "entity": (Entity,),
    "source": (FileSource, QuerySource),
    "feature_view": (FeatureView,),
    "feature_service": (FeatureService,),
}
PLURAL = {
    "entity": "entities",
    "source": "sources",
    "feature_view": "feature_views",
    "feature_service": "feature_services",
}
VERSIONED = ("feature_view", "feature_service")
AnyObject = Union[Entity, FileSource, QuerySource, FeatureView, FeatureService]


def source_from_dict(data: dict[str, Any]) -> Source:
    """A YAML source is a file source when it has `path`, a query source when it has `query`."""
    if "query" in data and "path" not in data:
        return QuerySource.model_validate(data)
    return FileSource.model_validate(data)


def object_from_dict(kind: str, data: dict[str, Any]) -> AnyObject:
    if kind == "source":
        return source_from_dict(data)
    return cast(AnyObject, MODELS[kind][0].model_validate(data))
