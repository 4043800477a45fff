"""featurectl.yaml: the project config. Each store's block is validated by the model that lives
next to its adapter (registry/config.py, offline/config.py, online/config.py); this module
composes them, finds the file, and expands ${NAME}."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from featurectl.core.config import ConfigBlock
from featurectl.core.errors import DefinitionError, Problem
from featurectl.loading.pydantic_errors import problems_from_validation
from featurectl.offline.config import DuckdbOfflineConfig, OfflineConfig
from featurectl.online.config import OnlineConfig, SqliteOnlineConfig
from featurectl.registry.config import RegistryConfig, SqliteRegistryConfig

CONFIG_FILE = "featurectl.yaml"
DEFAULT_DEFINITIONS = ["features/**/*.yaml", "features/**/*.yml", "features/**/*.py"]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)


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


STORE_BLOCKS = ("registry", "offline_store", "online_store")


def expand_env(value: Any, file: str, *, strict: bool = True, block: str | None = None) -> Any:
    """Replace ${NAME} in every string by the environment variable's value. Lenient expansion
    leaves unset variables in place, so a command that never opens a store (validate,
    plan --against) does not need that store's secrets."""
    if isinstance(value, dict):
        return {k: expand_env(v, file, strict=strict, block=block) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, file, strict=strict, block=block) for v in value]
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in os.environ:
                return os.environ[name]
            if not strict:
                return match.group(0)
            raise DefinitionError([Problem(
                f"environment variable {name} is not set", file=file, kind="config", name=block, field=block,
                hint=f"export {name}=... or remove ${{{name}}} from the config",
            )])
        return _ENV.sub(substitute, value)
    return value


def resolve_store(config: RepoConfig, block: str, file: str) -> Any:
    """A store's config block with every ${NAME} resolved: done when the store is opened."""
    value = getattr(config, block)
    raw = value.model_dump(by_alias=True)
    if not _ENV.search(str(raw)):
        return value
    try:
        return type(value).model_validate(expand_env(raw, file, block=block))
    except ValidationError as exc:
        raise DefinitionError(problems_from_validation(exc, file=file, kind="config", name=block)) from None


def load_config(root: Path) -> RepoConfig:
    path = root / CONFIG_FILE
    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem(f"malformed YAML: {exc}", file=file, hint="fix the YAML syntax")]) from None
    except OSError as exc:
        raise DefinitionError([Problem(f"cannot read config: {exc.strerror}", file=file)]) from None
    if not isinstance(raw, dict):
        raise DefinitionError([Problem("the config must be a mapping of keys to values", file=file)])
    try:
        expanded = {k: expand_env(v, file, strict=k not in STORE_BLOCKS, block=k) for k, v in raw.items()}
        return RepoConfig.model_validate(expanded)
    except ValidationError as exc:
        raise DefinitionError(problems_from_validation(exc, file=file, kind="config")) from None
