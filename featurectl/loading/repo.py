"""A feature repository on disk: its root, config and definitions."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurectl.core.definitions import Definitions

from featurectl.loading.config import CONFIG_FILE, RepoConfig, find_repo_root, load_config, resolve_store
from featurectl.loading.files import load_definitions


@dataclass
class Repo:
    root: Path
    config: RepoConfig

    @classmethod
    def open(cls, path: str | Path | None = None) -> "Repo":
        root = find_repo_root(Path(path) if path else Path.cwd())
        return cls(root=root, config=load_config(root))

    @property
    def definitions(self) -> Definitions:
        """The definitions in the repository's files, read now: a long-lived SDK object sees
        edits made since it was opened."""
        return load_definitions(self.root, self.config.definitions)[0]

    def store_config(self, block: str) -> Any:
        """The config block of one store, with its ${ENV} references resolved."""
        return resolve_store(self.config, block, str(self.root / CONFIG_FILE))
