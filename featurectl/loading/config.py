"""featurectl.yaml: the project config. Each store's block is validated by the model that lives
next to its adapter (registry/config.py, offline/config.py, online/config.py); this module
composes them, finds the file, and expands ${NAME}."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from featurectl.core.config import ConfigBlock
from featurectl.core.errors import DefinitionError, Problem
from featurectl.events.config import LineageConfig
from featurectl.loading.env import STORE_BLOCKS, expand_env, has_references
from featurectl.loading.pydantic_errors import problems_from_validation
from featurectl.loading.strict_yaml import load_yaml, yaml_problem
from featurectl.offline.config import DuckdbOfflineConfig, OfflineConfig
from featurectl.online.config import OnlineConfig, SqliteOnlineConfig
from featurectl.registry.config import RegistryConfig, SqliteRegistryConfig

CONFIG_FILE = "featurectl.yaml"
DEFAULT_DEFINITIONS = ["features/**/*.yaml", "features/**/*.yml", "features/**/*.py"]


class DriftConfig(ConfigBlock):
    """monitoring.drift: the defaults of `featurectl drift`; its flags override them."""

    psi_warn: float = Field(default=0.1, ge=0)
    psi_drift: float = Field(default=0.25, ge=0)
    fail_on: Literal["warn", "drift"] = "drift"

    @model_validator(mode="after")
    def _ordered(self) -> "DriftConfig":
        if self.psi_warn > self.psi_drift:
            raise ValueError(f"psi_warn ({self.psi_warn}) must not be above psi_drift ({self.psi_drift})")
        return self


class FreshnessConfig(ConfigBlock):
    """monitoring.freshness: the default of `featurectl freshness --fail-on`."""

    fail_on: Literal["minor", "major", "critical"] = "minor"


class MonitoringConfig(ConfigBlock):
    drift: DriftConfig = DriftConfig()  # frozen: one shared default is safe
    freshness: FreshnessConfig = FreshnessConfig()


class RepoConfig(ConfigBlock):
    project: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    definitions: list[str] = Field(default_factory=lambda: list(DEFAULT_DEFINITIONS))
    registry: RegistryConfig = Field(default_factory=SqliteRegistryConfig)
    offline_store: OfflineConfig = Field(default_factory=DuckdbOfflineConfig)
    online_store: OnlineConfig = Field(default_factory=SqliteOnlineConfig)
    lineage: LineageConfig | None = None  # OpenLineage run events of materializations
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    # The store blocks as written, ${NAME} unexpanded: each is expanded once, when its store opens.
    _written: dict[str, Any] = PrivateAttr(default_factory=dict)


def find_repo_root(start: Path) -> Path:
    """The nearest directory at or above `start` that holds featurectl.yaml."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise DefinitionError([Problem(
        f"no {CONFIG_FILE} found in {start} or any parent directory",
        hint="run the command inside a feature repository, pass --repo PATH, or create one with `featurectl init NAME`",
    )])


def resolve_store(config: RepoConfig, block: str, file: str) -> Any:
    """A store's config block with every ${NAME} resolved: done when the store is opened."""
    value = getattr(config, block)
    written = config._written.get(block)
    if not has_references(written):
        return value
    try:
        return type(value).model_validate(expand_env(written, file, block=block))
    except ValidationError as exc:
        raise DefinitionError(problems_from_validation(exc, file=file, kind="config", name=block)) from None


def load_config(root: Path) -> RepoConfig:
    path = root / CONFIG_FILE
    file = str(path)
    try:
        raw = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DefinitionError([yaml_problem(exc, file)]) from None
    except OSError as exc:
        raise DefinitionError([Problem(f"cannot read config: {exc.strerror}", file=file)]) from None
    if not isinstance(raw, dict):
        raise DefinitionError([Problem("the config must be a mapping of keys to values", file=file)])
    try:
        expanded = {k: expand_env(v, file, strict=k not in STORE_BLOCKS, block=k) for k, v in raw.items()}
        config = RepoConfig.model_validate(expanded)
    except ValidationError as exc:
        raise DefinitionError(problems_from_validation(exc, file=file, kind="config")) from None
    config._written = {k: raw[k] for k in STORE_BLOCKS if k in raw}
    return config
