"""A feature repository on disk: its root, config and definitions."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurectl.core.definitions import Definitions
from featurectl.core.errors import DefinitionError, Problem

from featurectl.loading.config import CONFIG_FILE, RepoConfig, find_repo_root, load_config, resolve_store


@dataclass
class Repo:
    root: Path
    config: RepoConfig

    @classmethod
    def open(cls, path: str | Path | None = None) -> "Repo":
        """The repository at `path` exactly, or, with no path, the nearest one at or above the
        current directory. A given path never falls back to an enclosing repository: a typo
        must not act on another project."""
        root = find_repo_root(Path.cwd()) if path is None else _root_at(Path(path))
        return cls(root=root, config=load_config(root))

    @property
    def definitions(self) -> Definitions:
        """The definitions in the repository's files, read now: a long-lived SDK object sees
        edits made since it was opened. (The file loader is imported here: a command that reads
        the registry only, such as `get-online`, never loads it.)"""
        from featurectl.loading.files import load_definitions

        return load_definitions(self.root, self.config.definitions)[0]

    def store_config(self, block: str) -> Any:
        """The config block of one store, with its ${ENV} references resolved."""
        return resolve_store(self.config, block, str(self.root / CONFIG_FILE))


def _root_at(path: Path) -> Path:
    if not path.exists():
        problem = f"the repository path {path} does not exist"
    elif not (path / CONFIG_FILE).is_file():
        problem = f"{path} holds no {CONFIG_FILE}"
    else:
        return path.resolve()
    raise DefinitionError([Problem(problem, hint=(
        f"pass (with --repo) the directory that holds {CONFIG_FILE}, omit --repo to use the nearest one at or "
        "above the current directory, or create a repository with `featurectl init NAME`"))])
