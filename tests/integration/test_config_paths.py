"""Paths in featurectl.yaml mean the same for every store: `~` is the home directory, relative
paths are relative to the repository root (featurectl.backends.config_path)."""
from __future__ import annotations

import pytest

from featurectl.online import create_online_store
from featurectl.online.config import SqliteOnlineConfig
from featurectl.registry import create_registry
from featurectl.registry.config import SqliteRegistryConfig

OPENERS = {
    "registry": lambda path, root: create_registry(SqliteRegistryConfig(path=path), root),
    "online_store": lambda path, root: create_online_store(SqliteOnlineConfig(path=path), root),
}


@pytest.mark.parametrize("block", OPENERS)
def test_a_tilde_path_lands_in_the_home_directory(tmp_path, monkeypatch, block):
    home, root = tmp_path / "home", tmp_path / "repo"
    home.mkdir(), root.mkdir()
    monkeypatch.setenv("HOME", str(home))
    OPENERS[block]("~/state/store.db", root).close()
    assert (home / "state" / "store.db").is_file()
    assert not (root / "~").exists()


@pytest.mark.parametrize("block", OPENERS)
def test_relative_and_absolute_paths(tmp_path, block):
    root = tmp_path / "repo"
    root.mkdir()
    OPENERS[block]("state/relative.db", root).close()
    OPENERS[block](str(tmp_path / "elsewhere" / "absolute.db"), root).close()
    assert (root / "state" / "relative.db").is_file()
    assert (tmp_path / "elsewhere" / "absolute.db").is_file()
