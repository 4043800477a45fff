"""definitions_at_ref and git_commit against real git repositories made in a temporary directory."""
from __future__ import annotations

import os
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from featurectl.core.errors import DefinitionError, UsageError
from featurectl.loading.files import load_definitions
from featurectl.loading.git import definitions_at_ref, git_commit, git_info

FEATURES = ["features/**/*.yaml", "features/**/*.yml", "features/**/*.py"]

CONFIG = "project: rides\n"

DRIVERS = """\
entities:
  - {{name: driver, join_key: driver_id, dtype: int64}}
sources:
  - {{name: driver_hourly, path: data/driver_stats.parquet, timestamp_field: event_timestamp}}
feature_views:
  - name: driver_stats
    version: {version}
    entities: [driver]
    source: driver_hourly
    owner: rides-ml@example.com
    features:
{features}
feature_services:
  - {{name: driver_ranking, version: 1.0.0, owner: rides-ml@example.com, features: ["driver_stats:conv_rate"]}}
"""


def drivers_yaml(version: str = "1.0.0", features: tuple[str, ...] = ("conv_rate",)) -> str:
    lines = "\n".join(f"      - {{name: {f}, dtype: float32}}" for f in features)
    return DRIVERS.format(version=version, features=lines)


PYTHON_DEFS = textwrap.dedent("""\
    from featurectl import Entity, Feature, FeatureView, FileSource

    rider = Entity(name="rider", join_key="rider_id")
    trips = FileSource(name="rider_trips", path="data/trips.parquet", timestamp_field="ts")
    rider_stats = FeatureView(
        name="rider_stats", version="{version}", entities=[rider], source=trips,
        owner="rides-ml@example.com", features=[Feature(name="trips_7d", dtype="int64")],
    )
""")


@pytest.fixture
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Git discovery stops at tmp_path, and no inherited variable points git elsewhere."""
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return tmp_path


class Git:
    def __init__(self, top: Path):
        self.top = top

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.top, capture_output=True, text=True, check=True)
        return done.stdout

    def write(self, rel: str, text: str) -> None:
        path = self.top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str, *paths: str) -> str:
        self("add", "--all", "--", *(paths or (".",)))
        self("commit", "-q", "--allow-empty", "-m", message)
        return self("rev-parse", "HEAD").strip()


@pytest.fixture
def git(isolated_git: Path) -> Git:
    top = isolated_git / "checkout"
    top.mkdir()
    g = Git(top)
    g("init", "-q", "-b", "main")
    g("config", "user.name", "Test User")
    g("config", "user.email", "test@example.com")
    g("config", "commit.gpgsign", "false")
    return g


def feature_names(defs, view: str = "driver_stats") -> list[str]:
    return [f.name for f in defs.feature_views[view].features]


def test_head_gives_committed_definitions_while_working_tree_has_edits(git: Git):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml())
    git.commit("v1")
    git.write("features/drivers.yaml", drivers_yaml("1.1.0", ("conv_rate", "acc_rate")))

    base, origins = definitions_at_ref(git.top, "HEAD")
    desired, _ = load_definitions(git.top, FEATURES)

    assert base.feature_views["driver_stats"].version == "1.0.0"
    assert feature_names(base) == ["conv_rate"]
    assert desired.feature_views["driver_stats"].version == "1.1.0"
    assert feature_names(desired) == ["conv_rate", "acc_rate"]
    assert set(base.entities) == {"driver"} and set(base.feature_services) == {"driver_ranking"}
    assert origins[("feature_view", "driver_stats")] == "HEAD:features/drivers.yaml"


def test_branch_name_labels_origins_and_older_commits_are_reachable(git: Git):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml())
    git.commit("v1")
    git("branch", "base")
    git.write("features/drivers.yaml", drivers_yaml("1.1.0", ("conv_rate", "acc_rate")))
    git.commit("v2")

    at_base, origins = definitions_at_ref(git.top, "base")
    at_head, _ = definitions_at_ref(git.top, "HEAD")

    assert feature_names(at_base) == ["conv_rate"]
    assert feature_names(at_head) == ["conv_rate", "acc_rate"]
    assert origins[("entity", "driver")] == "base:features/drivers.yaml"


def test_definitions_folder_renamed_since_the_ref_uses_the_refs_own_globs(git: Git):
    git.write("featurectl.yaml", CONFIG + 'definitions: ["defs/**/*.yaml"]\n')
    git.write("defs/drivers.yaml", drivers_yaml())
    old = git.commit("definitions in defs/")
    git("mv", "defs", "features")
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml("1.1.0", ("conv_rate", "acc_rate")))
    git.commit("move definitions to features/")

    base, origins = definitions_at_ref(git.top, old)

    assert feature_names(base) == ["conv_rate"]
    assert origins[("feature_view", "driver_stats")] == f"{old}:defs/drivers.yaml"
    assert feature_names(definitions_at_ref(git.top, "HEAD")[0]) == ["conv_rate", "acc_rate"]


def test_feature_repository_in_a_subdirectory_of_the_checkout(git: Git):
    git.write("README.md", "monorepo\n")
    git.write("ml/rides/featurectl.yaml", CONFIG)
    git.write("ml/rides/features/drivers.yaml", drivers_yaml())
    git.write("ml/other/features/drivers.yaml", "not: [valid definitions")
    git.commit("v1")

    base, origins = definitions_at_ref(git.top / "ml" / "rides", "HEAD")

    assert feature_names(base) == ["conv_rate"]
    assert origins[("feature_view", "driver_stats")] == "HEAD:ml/rides/features/drivers.yaml"


def test_config_at_the_ref_may_reference_store_secrets_that_ci_does_not_have(git: Git, monkeypatch):
    monkeypatch.delenv("FEATURECTL_TEST_UNSET_DSN", raising=False)
    git.write("featurectl.yaml", CONFIG + "registry: {type: postgres, dsn: '${FEATURECTL_TEST_UNSET_DSN}'}\n")
    git.write("features/drivers.yaml", drivers_yaml())
    git.commit("v1")

    base, _ = definitions_at_ref(git.top, "HEAD")

    assert feature_names(base) == ["conv_rate"]


def test_unknown_ref_is_a_usage_error_naming_it(git: Git):
    git.write("featurectl.yaml", CONFIG)
    git.commit("v1")

    with pytest.raises(UsageError) as caught:
        definitions_at_ref(git.top, "origin/no-such-branch")

    assert "origin/no-such-branch" in str(caught.value)
    assert "git fetch" in caught.value.hint


def test_option_like_ref_is_refused_not_passed_to_git(git: Git):
    git.write("featurectl.yaml", CONFIG)
    git.commit("v1")

    with pytest.raises(UsageError, match="--output=x"):
        definitions_at_ref(git.top, "--output=x")


def test_repository_without_commits_is_a_usage_error(git: Git):
    git.write("featurectl.yaml", CONFIG)

    with pytest.raises(UsageError, match="'HEAD'"):
        definitions_at_ref(git.top, "HEAD")


def test_ref_before_featurectl_existed_gives_empty_definitions(git: Git):
    git.write("README.md", "a project that will grow a feature repository\n")
    first = git.commit("initial commit")
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml())
    git.commit("add featurectl")

    base, origins = definitions_at_ref(git.top, first)

    assert base.to_dict() == {"entities": [], "sources": [], "feature_views": [], "feature_services": []}
    assert origins == {}


def test_not_a_git_checkout_is_a_usage_error(isolated_git: Path):
    plain = isolated_git / "plain"
    plain.mkdir()
    (plain / "featurectl.yaml").write_text(CONFIG)

    with pytest.raises(UsageError, match="--against needs a git checkout") as caught:
        definitions_at_ref(plain, "HEAD")

    assert str(plain.resolve()) in str(caught.value)


def test_missing_directory_is_a_usage_error_naming_it(isolated_git: Path):
    missing = isolated_git / "no-such-dir"

    with pytest.raises(UsageError, match="no-such-dir is not a directory"):
        definitions_at_ref(missing, "HEAD")
    assert git_commit(missing) is None


def test_git_not_installed_is_a_usage_error(git: Git, monkeypatch):
    git.write("featurectl.yaml", CONFIG)
    git.commit("v1")
    monkeypatch.setenv("PATH", str(git.top / "no-bin"))

    with pytest.raises(UsageError, match="git is not installed"):
        definitions_at_ref(git.top, "HEAD")
    assert git_commit(git.top) is None


def test_python_definitions_at_the_ref_run_from_the_committed_text(git: Git):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/riders.py", PYTHON_DEFS.format(version="1.0.0"))
    git.commit("v1")
    git.write("features/riders.py", PYTHON_DEFS.format(version="3.0.0"))

    base, origins = definitions_at_ref(git.top, "HEAD")

    assert base.feature_views["rider_stats"].version == "1.0.0"
    assert base.feature_views["rider_stats"].entities == ["rider"]
    assert origins[("source", "rider_trips")] == "HEAD:features/riders.py"


def test_invalid_definitions_at_the_ref_name_ref_and_path(git: Git):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml().replace("dtype: float32", "dtype: float33"))
    git.write("features/riders.py", "raise RuntimeError('cannot read ' + __file__)\n")
    git.commit("broken")
    git.write("features/drivers.yaml", drivers_yaml())
    git.write("features/riders.py", "")

    with pytest.raises(DefinitionError) as caught:
        definitions_at_ref(git.top, "main")

    files = {p.file for p in caught.value.problems}
    assert files == {"main:features/drivers.yaml", "main:features/riders.py"}
    assert any("float33" in p.message for p in caught.value.problems)
    # The temporary extraction's path is shown as REF:path too.
    assert any(p.message.endswith("cannot read main:features/riders.py") for p in caught.value.problems)
    assert not any("featurectl-ref-" in f"{p.message} {p.hint}" for p in caught.value.problems)
    load_definitions(git.top, FEATURES)  # the working tree itself is fine


def test_malformed_config_at_the_ref_names_ref_and_file(git: Git):
    git.write("featurectl.yaml", CONFIG + "definitions: features/*.yaml\n")
    git.commit("definitions is not a list")

    with pytest.raises(DefinitionError) as caught:
        definitions_at_ref(git.top, "HEAD")

    (problem,) = caught.value.problems
    assert problem.file == "HEAD:featurectl.yaml" and problem.field == "definitions"


def test_working_tree_index_and_head_are_untouched(git: Git, tmp_path: Path, monkeypatch):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml())
    git.write("features/riders.py", PYTHON_DEFS.format(version="1.0.0"))
    git.commit("v1")
    git.write("features/drivers.yaml", drivers_yaml("1.1.0", ("conv_rate", "acc_rate")))
    git("add", "features/drivers.yaml")                                 # a staged change
    git.write("features/riders.py", PYTHON_DEFS.format(version="2.0.0"))  # an unstaged change
    git.write("features/new.yaml", "entities: []\n")                   # an untracked file
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = (git("status", "--porcelain"), (git.top / ".git" / "index").read_bytes(),
              git("rev-parse", "HEAD"), sorted(p.relative_to(git.top) for p in git.top.rglob("*")))
    cwd = os.getcwd()

    definitions_at_ref(git.top, "HEAD")

    after = (git("status", "--porcelain"), (git.top / ".git" / "index").read_bytes(),
             git("rev-parse", "HEAD"), sorted(p.relative_to(git.top) for p in git.top.rglob("*")))
    assert after == before
    assert os.getcwd() == cwd
    assert list(scratch.iterdir()) == []  # the temporary extraction is gone


def test_temporary_directory_is_removed_when_the_ref_is_invalid(git: Git, tmp_path: Path, monkeypatch):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/bad.yaml", "entities: [")
    git.commit("broken")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    with pytest.raises(DefinitionError):
        definitions_at_ref(git.top, "HEAD")

    assert list(scratch.iterdir()) == []


def test_damaged_clone_is_a_usage_error_and_leaves_no_temporary_files(git: Git, tmp_path: Path, monkeypatch):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml())
    git.commit("v1")
    blob = git("rev-parse", "HEAD:features/drivers.yaml").strip()
    (git.top / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    with pytest.raises(UsageError, match="git could not read 'HEAD'") as caught:
        definitions_at_ref(git.top, "HEAD")

    assert "git fsck" in caught.value.hint
    assert list(scratch.iterdir()) == []


def test_inherited_git_dir_does_not_redirect_to_another_repository(git: Git, isolated_git: Path, monkeypatch):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml())
    git.commit("v1")
    other = Git(isolated_git / "other")
    other.top.mkdir()
    other("init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other.top / ".git"))

    base, _ = definitions_at_ref(git.top, "HEAD")

    assert feature_names(base) == ["conv_rate"]


# --- git_commit -------------------------------------------------------------------------------

def test_git_commit_is_head_when_clean_and_marked_dirty_on_changes(git: Git):
    git.write("featurectl.yaml", CONFIG)
    git.write("features/drivers.yaml", drivers_yaml())
    sha = git.commit("v1")

    assert git_commit(git.top) == sha
    assert git_info(git.top).dirty is False

    git.write(".featurectl/registry.db", "embedded store state")  # not a change to definitions
    assert git_commit(git.top) == sha

    git.write("features/new.yaml", "entities: []\n")  # untracked
    assert git_commit(git.top) == f"{sha}-dirty"
    (git.top / "features/new.yaml").unlink()

    git.write("features/drivers.yaml", drivers_yaml("1.1.0"))  # modified
    info = git_info(git.top)
    assert (info.commit, info.dirty, str(info)) == (sha, True, f"{sha}-dirty")


def test_git_commit_only_looks_under_the_repository_root(git: Git):
    git.write("ml/rides/featurectl.yaml", CONFIG)
    sha = git.commit("v1")
    git.write("elsewhere/notes.txt", "unrelated work in progress\n")

    assert git_commit(git.top / "ml" / "rides") == sha
    assert git_commit(git.top) == f"{sha}-dirty"


def test_git_commit_is_none_outside_a_checkout_or_before_the_first_commit(git: Git, isolated_git: Path):
    plain = isolated_git / "plain"
    plain.mkdir()

    assert git_commit(plain) is None
    assert git_info(plain) is None
    assert git_commit(git.top) is None  # initialised, nothing committed yet
