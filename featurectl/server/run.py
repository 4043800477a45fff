"""Starting the server: the startup line, uvicorn with its workers, graceful shutdown."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from featurectl.server.app import LOG_ENV, REPO_ENV, ROLL_BYTES_ENV, ROLL_SECONDS_ENV

GRACEFUL_SHUTDOWN_SECONDS = 30


def startup_line(repo: Path | None, url: str, workers: int, log_features: Path | None) -> dict[str, Any]:
    """What the server is about to serve, read once in the parent (errors here are exit 2/3)."""
    from featurectl.sdk import FeatureStore

    with FeatureStore(repo) as store:
        revision = store.registry.read().revision
        online = store.store_description("online_store")
        return {"event": "serving", "url": url, "project": store.project, "registry_revision": revision,
                "online_store": online, "workers": workers,
                "log_features": str(log_features) if log_features else None, "repo": str(store.repo.root)}


def serve(repo: Path | None, host: str, port: int, workers: int | None, log_features: Path | None) -> None:
    import uvicorn

    workers = workers or os.cpu_count() or 1
    line = startup_line(repo, f"http://{host}:{port}", workers, log_features)
    os.environ[REPO_ENV] = line["repo"]
    if log_features is not None:
        os.environ[LOG_ENV] = str(_log_directory(log_features))
        _check_roll_settings()
    print(json.dumps(line), flush=True)
    with _metrics_directory(workers):
        uvicorn.run(
            "featurectl.server.app:create_app", factory=True, host=host, port=port, workers=workers,
            loop="uvloop", http="httptools", lifespan="on",
            access_log=False, log_level="warning", server_header=False, date_header=False,
            # No recycling: a worker restart every N requests is what gives `feast serve` its p99.
            limit_max_requests=None, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )


@contextmanager
def _metrics_directory(workers: int):
    """With several workers, prometheus-client's multiprocess mode: each worker keeps its values
    in files and /metrics sums them. The directory is this run's own, new at start and removed at
    exit, so counters never add up files left by an earlier run (the library's documented
    requirement). A PROMETHEUS_MULTIPROC_DIR in the environment is where that directory is made,
    never used itself. One worker keeps its metrics in memory."""
    parent = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if workers <= 1:
        yield
        return
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    directory = tempfile.mkdtemp(prefix=f"featurectl-metrics-{os.getpid()}-", dir=parent or None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(directory, ignore_errors=True)


def _check_roll_settings() -> None:
    from featurectl.core.errors import UsageError

    for name, example in ((ROLL_BYTES_ENV, "134217728"), (ROLL_SECONDS_ENV, "600")):
        value = os.environ.get(name)
        if not value:
            continue
        try:
            ok = float(value) > 0
        except ValueError:
            ok = False
        if not ok:
            raise UsageError(f"environment variable {name}={value!r} is not a positive number",
                             hint=f"set it to a number, e.g. {name}={example}, or unset it for the default")


def _log_directory(path: Path) -> Path:
    from featurectl.core.errors import UsageError

    path = Path(path).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".featurectl-write-probe"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--log-features {path}: cannot write there ({exc.strerror or exc})",
                         hint="give a directory this user can create and write") from None
    return path
