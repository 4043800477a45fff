"""`featurectl init` works from a built, non-editable wheel: the templates ship inside it."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import featurectl
from tests.fixtures.repos import cli_env

ROOT = Path(featurectl.__file__).parent.parent


def build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the sources, so the build leaves nothing in the checkout."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("featurectl", "templates"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    return next((tmp_path / "dist").glob("featurectl-*.whl"))


def test_init_runs_from_an_installed_wheel(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "featurectl/templates/init/basic/featurectl.yaml.j2" in names
    assert "featurectl/templates/init/basic/.gitignore" in names
    assert "featurectl/templates/ci/github-actions.yml" in names
    assert "featurectl/render/templates/plan.md.j2" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what pip install puts in site-packages
    env = cli_env({"PYTHONPATH": str(site)})
    work = tmp_path / "work"
    work.mkdir()
    run = subprocess.run([sys.executable, "-c", "import featurectl, sys; print(featurectl.__file__); "
                          "from featurectl.cli.main import main; sys.argv = ['featurectl', 'init', 'demo']; main()"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == str(site / "featurectl" / "__init__.py")
    assert (work / "demo" / "featurectl.yaml").is_file() and (work / "demo" / ".gitignore").is_file()
    assert not (work / "demo" / "github-actions.yml").exists()
