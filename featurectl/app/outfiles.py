"""Files and directories a command writes (--out, --output): refused before any work when they
cannot be written, and never left half-written. Every writer here writes beside the target
and renames over it when done, so a failure or an interrupt leaves the old target (or none).

The one implementation of write-then-rename for every front door: `plan --out`, result files
(app/result_files.py), reference profiles (`profile --out`) and the docs site (`docs --out`).
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from featurectl.core.errors import UsageError


def _refuse(flag: str, path: Path, problem: str, hint: str | None = None) -> UsageError:
    return UsageError(f"{flag} {path} {problem}", hint=hint or f"give {flag} a file path in a writable directory")


def check_writable(path: Path, flag: str) -> None:
    """Exit 2 naming the path now, rather than after the work, when file `path` cannot be written."""
    parent = path.parent
    problem = None
    if path.is_dir():
        problem = "is a directory"
    elif not parent.is_dir():
        problem = (f"cannot be written: {parent} is a file, not a directory" if parent.exists()
                   else f"cannot be written: the directory {parent} does not exist")
    elif not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        problem = "cannot be written: permission denied"
    if problem:
        raise _refuse(flag, path, problem)


def _partial_name(path: Path, tag: str = "partial") -> Path:
    """A hidden sibling of `path`, unique to this process, keeping its extension."""
    return path.with_name(f".{path.name}.{os.getpid()}.{tag}{path.suffix}")


@contextmanager
def replacing(path: Path, flag: str) -> Iterator[Path]:
    """A temporary path beside `path`, with its extension, renamed over `path` when the block
    succeeds and removed when it fails or is interrupted. An OSError while writing it is exit 2
    naming `flag` and the path."""
    path = Path(path)
    check_writable(path, flag)
    partial = _partial_name(path)
    try:
        yield partial
        os.replace(partial, path)
    except OSError as exc:
        raise _refuse(flag, path, f"cannot be written: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def write_text(path: Path, text: str, flag: str) -> None:
    with replacing(path, flag) as partial:
        partial.write_text(text, encoding="utf-8")


def write_json(path: Path, content: Any, flag: str) -> None:
    """JSON that any parser reads (no NaN), indented for people."""
    write_text(path, json.dumps(content, indent=1, allow_nan=False) + "\n", flag)


# --- directories --------------------------------------------------------------------------

def check_directory(path: Path, flag: str, *, owned_by: str) -> None:
    """Exit 2 now when `path` cannot become the output directory: it is a file, a file stands
    in its way, or it holds files that another tool wrote (no `owned_by` marker file): a
    directory is replaced whole, so it must be new, empty, or an earlier output of this command."""
    path = Path(path)
    hint = f"give {flag} a new or empty directory, or the directory of an earlier run"
    if path.exists() and not path.is_dir():
        raise _refuse(flag, path, "is a file, not a directory", hint)
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise _refuse(flag, path, f"cannot be created: {blocker} is a file, not a directory", hint)
    if path.is_dir() and any(path.iterdir()) and not (path / owned_by).is_file():
        raise _refuse(flag, path, f"holds files this command did not write (no {owned_by}); "
                                  "it is replaced whole, so nothing else may live there", hint)


@contextmanager
def replacing_directory(path: Path, flag: str, *, owned_by: str) -> Iterator[Path]:
    """A temporary directory beside `path` to build in; when the block succeeds it takes the
    place of `path` (an earlier output is moved away, then deleted), when it fails it is
    removed and `path` is as it was. See check_directory for what `path` may be."""
    path = Path(path)
    check_directory(path, flag, owned_by=owned_by)
    partial, old = _partial_name(path), _partial_name(path, "old")
    try:
        partial.mkdir(parents=True)
        yield partial
        if path.exists():
            os.replace(path, old)
        os.replace(partial, path)
    except OSError as exc:
        if old.exists() and not path.exists():
            os.replace(old, path)  # put the earlier output back
        raise _refuse(flag, path, f"cannot be written: {exc.strerror or exc}",
                      f"give {flag} a directory in a writable place") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
