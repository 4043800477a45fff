"""A feature repository on disk: its root, config and definitions."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from featurectl.core.definitions import Definitions
from typing import Any

from featurectl.loading.config import CONFIG_FILE, RepoConfig, find_repo_root, load_config, resolve_store
from featurectl.loading.files import Origins, load_definitions


@dataclass
class Repo:
    root: Path
    config: RepoConfig

    @classmethod
    def open(cls, path: str | Path | None = None) -> "Repo":
        root = find_repo_root(Path(path) if path else Path.cwd())
        return cls(root=root, config=load_config(root))

    @cached_property
    def _loaded(self) -> tuple[Definitions, Origins]:
        return load_definitions(self.root, self.config.definitions)

    @property
    def definitions(self) -> Definitions:
        return self._loaded[0]

    @property
    def origins(self) -> Origins:
        return self._loaded[1]

    def store_config(self, block: str) -> Any:
        """The config block of one store, with its ${ENV} references resolved."""
        return resolve_store(self.config, block, str(self.root / CONFIG_FILE))

    def path(self, relative: str) -> Path:
        """A config path made absolute against the repository root."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.root / p
