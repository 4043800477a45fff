"""pyproject.toml ships every package and the templates/ folder (docs/architecture.md)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import featurectl

PACKAGE = Path(featurectl.__file__).parent
ROOT = PACKAGE.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_package_list_names_every_package_in_the_tree():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")
               if "__pycache__" not in p.parts}
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == {"featurectl.templates"}


def test_templates_is_a_real_folder_mapped_into_the_package():
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"featurectl.templates": "templates"}
    templates = ROOT / "templates"
    assert not templates.is_symlink() and (templates / "init" / "basic").is_dir()
    assert (templates / "ci" / "github-actions.yml").is_file()
    assert not (PACKAGE / "templates").exists()


def test_no_symlink_in_the_tree():
    skip = {".git", ".venv", ".featurectl", ".demo", "bench"}
    links = [p for p in ROOT.rglob("*") if p.is_symlink() and not skip & set(p.relative_to(ROOT).parts)]
    assert links == []
