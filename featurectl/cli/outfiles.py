"""Files a command writes (--out, --output): refused before any work when they cannot be
written, and never left half-written (written beside the target, then renamed over it)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from featurectl.core.errors import UsageError


def check_writable(path: Path, flag: str) -> None:
    """Exit 2 naming the path now, rather than after the work, when `path` cannot be written."""
    parent = path.parent
    problem = None
    if path.is_dir():
        problem = "is a directory"
    elif not parent.is_dir():
        problem = f"cannot be written: the directory {parent} does not exist"
    elif not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        problem = "cannot be written: permission denied"
    if problem:
        raise UsageError(f"{flag} {path} {problem}", hint=f"give {flag} a file path in a writable directory")


@contextmanager
def replacing(path: Path, flag: str) -> Iterator[Path]:
    """A temporary path beside `path`, with its extension, renamed over `path` when the block
    succeeds and removed when it fails or is interrupted."""
    check_writable(path, flag)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text(path: Path, text: str, flag: str) -> None:
    with replacing(path, flag) as partial:
        try:
            partial.write_text(text)
        except OSError as exc:
            raise UsageError(f"{flag} {path} cannot be written: {exc.strerror or exc}",
                             hint=f"give {flag} a file path in a writable directory") from None
