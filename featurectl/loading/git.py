"""Definitions as they were at a git revision (`plan --against REF`), and the commit being applied.

The revision's files are read with `git archive` into a temporary directory: that reads the
object database only, so the working tree, the index and HEAD are never touched, and it
works the same on a clean CI checkout and on a developer's half-edited tree.

Problems found in the revision's files name them `REF:path`, with the path relative to the
top of the git checkout, so `git show REF:path` opens the file at fault and nobody mistakes
them for problems in the working tree.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO

import yaml

from featurectl.core.definitions import Definitions
from featurectl.core.errors import DefinitionError, Problem, UsageError
from featurectl.loading.config import CONFIG_FILE, DEFAULT_DEFINITIONS
from featurectl.loading.env import expand_env
from featurectl.loading.strict_yaml import load_yaml, yaml_problem
from featurectl.loading.files import Origins, load_definitions

# We locate the repository from repo_root ourselves; inherited variables (set e.g. inside git
# hooks) would point git at another repository or index.
_LOCATING_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_COMMON_DIR")
# The embedded stores' default home: writing the registry must not make the tree "dirty".
_STATE_DIR = ".featurectl"


class GitError(Exception):
    """git could not be run or refused a command; carries git's own message."""


class _CannotRun(GitError):
    """git is missing, or the directory to run it in is."""


def definitions_at_ref(repo_root: Path, ref: str) -> tuple[Definitions, Origins]:
    """The definitions of the feature repository at `repo_root` as committed at `ref`.

    Returns empty Definitions when `ref` has no featurectl.yaml at that place (the project
    did not exist yet). Origins are labelled `REF:path`. Raises UsageError when repo_root is
    not in a git checkout or `ref` names no commit, DefinitionError when the files at `ref`
    are invalid.
    """
    top, prefix = _locate(Path(repo_root))
    sha = _resolve(top, ref)
    label = _Labeller(ref, prefix)
    tmp = Path(tempfile.mkdtemp(prefix="featurectl-ref-"))
    try:
        config_text = _read_blob(top, sha, f"{prefix}{CONFIG_FILE}")
        if config_text is None:
            return Definitions(), {}
        patterns = _definition_globs(config_text, CONFIG_FILE)  # labelled below, as every problem
        _extract(top, sha, prefix, tmp)
        defs, origins = load_definitions(tmp / prefix, patterns)
    except DefinitionError as exc:
        raise DefinitionError([label.problem(p, tmp / prefix) for p in exc.problems]) from None
    except GitError as exc:  # a damaged or partial clone: git's own words say what is missing
        raise UsageError(f"git could not read '{ref}' ({sha[:12]}) in {top}: {exc}",
                         hint="check the clone with `git fsck`, or fetch again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return defs, {key: label(file) for key, file in origins.items()}


@dataclass(frozen=True)
class GitInfo:
    """The commit a repository is at; `dirty` when files under the repository root differ from it."""

    commit: str
    dirty: bool

    def __str__(self) -> str:
        return f"{self.commit}-dirty" if self.dirty else self.commit


def git_info(repo_root: Path) -> GitInfo | None:
    """HEAD of the checkout holding repo_root, or None (no git, not a checkout, no commit yet).

    Dirty means a tracked change or an untracked, not ignored file under repo_root, except
    in `.featurectl/`, where the embedded stores live.
    """
    root = Path(repo_root)
    try:
        sha = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip()
        # --no-optional-locks: reading the status must not rewrite the index.
        status = _git(root, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all", "--",
                      ".", f":(exclude){_STATE_DIR}")
    except GitError:
        return None
    return GitInfo(commit=sha, dirty=bool(status.strip()))


def git_commit(repo_root: Path) -> str | None:
    """HEAD's sha, suffixed `-dirty` when the tree has changes (see git_info); None outside git."""
    info = git_info(repo_root)
    return str(info) if info else None


# --- git plumbing -----------------------------------------------------------------------------

def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _LOCATING_ENV}


def _git(cwd: Path, *args: str) -> str:
    if not cwd.is_dir():  # checked first: a missing cwd also raises FileNotFoundError below
        raise _CannotRun(f"{cwd} is not a directory")
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=_env(), capture_output=True,
                              encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise _CannotRun("git is not installed or not on PATH") from None
    if done.returncode != 0:
        raise GitError(done.stderr.strip() or f"git {args[0]} exited with {done.returncode}")
    return done.stdout


def _locate(repo_root: Path) -> tuple[Path, str]:
    """(git top level, repo_root relative to it as a posix prefix: '' or 'sub/dir/')."""
    root = repo_root.resolve()
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    except _CannotRun as exc:
        raise UsageError(f"--against cannot read git: {exc}",
                         hint="install git, and pass --repo an existing feature repository") from None
    except GitError as exc:
        raise UsageError(
            f"--against needs a git checkout, and {root} is not inside one ({exc})",
            hint="run plan --against from a clone of the feature repository, or plan against the registry",
        ) from None
    rel = root.relative_to(top).as_posix()
    return top, "" if rel == "." else f"{rel}/"


def _resolve(top: Path, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise UsageError(f"'{ref}' is not a git revision", hint="pass a branch, tag or commit, e.g. origin/main")
    try:
        return _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except GitError:
        raise UsageError(
            f"git revision '{ref}' does not name a commit in {top}",
            hint="check the name (git branch -a), run `git fetch` to get remote branches; "
                 "in CI check out the full history (fetch-depth: 0)",
        ) from None


def _read_blob(top: Path, sha: str, path: str) -> str | None:
    """A file's text at the commit, or None when the commit has no such file."""
    try:
        kind = _git(top, "cat-file", "-t", f"{sha}:{path}").strip()
    except GitError:
        return None
    return _git(top, "cat-file", "blob", f"{sha}:{path}") if kind == "blob" else None


def _extract(top: Path, sha: str, prefix: str, dest: Path) -> None:
    """Write the commit's files under `prefix` into dest (keeping the prefix)."""
    args = ["git", "archive", "--format=tar", sha]
    if prefix:
        args += ["--", prefix.rstrip("/")]
    proc = subprocess.Popen(args, cwd=top, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None  # both are PIPEs
    untar_error = None
    try:
        _untar(proc.stdout, dest)
    except tarfile.TarError as exc:  # a failing git archive cuts the stream short; its stderr says why
        untar_error = exc
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        code = proc.wait()
    if code != 0:
        raise GitError(f"git archive failed: {stderr.strip()}")
    if untar_error is not None:
        raise GitError(f"git archive gave an unreadable archive: {untar_error}")


def _untar(stream: IO[bytes], dest: Path) -> None:
    def safe(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        try:
            return tarfile.data_filter(member, path)
        except tarfile.FilterError:  # a symlink leaving the tree: skip it rather than follow it
            return None

    with tarfile.open(fileobj=stream, mode="r|") as archive:
        archive.extractall(dest, filter=safe)


# --- config and labels ------------------------------------------------------------------------

def _definition_globs(text: str, file: str) -> list[str]:
    """The `definitions` globs of the config at the ref.

    Only this key is read: the store blocks may reference secrets (${PG_DSN}) that a CI job
    diffing definitions does not have and does not need.
    """
    try:
        raw = load_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise DefinitionError([yaml_problem(exc, file)]) from None
    if not isinstance(raw, dict):
        raise DefinitionError([Problem("the config must be a mapping of keys to values", file=file)])
    globs = expand_env(raw.get("definitions", DEFAULT_DEFINITIONS), file)
    if not isinstance(globs, list) or not globs or not all(isinstance(g, str) for g in globs):
        raise DefinitionError([Problem(
            "'definitions' must be a non-empty list of glob patterns", file=file, field="definitions",
            hint='e.g. definitions: ["features/**/*.yaml", "features/**/*.py"]')])
    return globs


@dataclass(frozen=True)
class _Labeller:
    ref: str
    prefix: str

    def __call__(self, rel: str) -> str:
        return f"{self.ref}:{PurePosixPath(self.prefix, rel).as_posix()}"

    def problem(self, problem: Problem, tmp_root: Path) -> Problem:
        """The same problem, its file and any temporary path in its text shown as REF:path."""
        def text(value: str) -> str:
            return value.replace(f"{tmp_root}/", f"{self.ref}:{self.prefix}")
        file = self(problem.file) if problem.file else None
        return replace(problem, file=file, message=text(problem.message), hint=problem.hint and text(problem.hint))
