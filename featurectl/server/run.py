"""Starting the server: the startup line, the feature-log writer process, uvicorn with its
workers, graceful shutdown."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator

from featurectl.server.environment import LOG_BUFFER_ENV, LOG_ENV, LOG_SOCKET_ENV, REPO_ENV, ROLL_BYTES_ENV, ROLL_SECONDS_ENV

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

    from featurectl.server.scheduling import check_slice_setting

    workers = workers or os.cpu_count() or 1
    check_slice_setting()
    line = startup_line(repo, f"http://{host}:{port}", workers, log_features)
    os.environ[REPO_ENV] = line["repo"]
    log_directory = None
    if log_features is not None:
        log_directory = _log_directory(log_features)
        os.environ[LOG_ENV] = str(log_directory)
        _check_roll_settings()
    print(json.dumps(line), flush=True)
    # Feature logging: the writer's counters are summed with the workers' (multiprocess mode
    # even for one worker). The writer outlives the workers: uvicorn.run returns once every
    # worker has stopped (each sent what it held), then the writer drains and exits.
    with _metrics_directory(workers > 1 or log_directory is not None):
        with (LogWriterProcess(log_directory) if log_directory else nullcontext()) as writer:
            if writer is not None:
                os.environ[LOG_SOCKET_ENV] = writer.address
            # Arrow's allocator for the workers (read when a push first allocates): glibc's, not
            # the bundled mimalloc, whose per-thread segments kept 7-13 MB more resident in a
            # worker after serve_bench's push load, for the few hundred KB a 1,000-row push
            # allocates through Arrow (docs/benchmarks.md). An operator's own choice stands.
            os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
            uvicorn.run(
                "featurectl.server.app:create_app", factory=True, host=host, port=port, workers=workers,
                # uvicorn's httptools protocol, each response in one write (server/protocol.py)
                loop="uvloop", http="featurectl.server.protocol:OneWriteProtocol", lifespan="on",
                access_log=False, log_level="warning", server_header=False, date_header=False,
                # No recycling: a worker restart every N requests is what gives `feast serve` its p99.
                limit_max_requests=None, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )


class LogWriterProcess:
    """The server's feature-log writer (server/log_writer.py), the one process that imports
    pyarrow, started before the workers and restarted when it dies (backoff 0.5 s doubling to
    30 s, reset after a minute of life; each restart counted in
    featurectl_feature_log_writer_restarts_total). The listening socket is made here, in a
    private directory, and handed to every writer it starts, so workers connect before a
    writer accepts and keep the same address across restarts. Closing ends the control pipe
    (the writer's signal to drain and exit) and waits for the writer."""

    WAIT_SECONDS = 120.0

    def __init__(self, directory: Path):
        self.directory = directory
        self._private = tempfile.mkdtemp(prefix="featurectl-log-")
        self.address = os.path.join(self._private, "writer.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.address)
        self._listener.listen(128)
        self._control, self._stop = os.pipe()  # the writer reads; closing _stop tells it to finish
        self._closing = False
        self._lock = threading.Lock()
        self.process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="featurectl-log-writer-watch", daemon=True)
        self._watcher.start()

    def _spawn(self) -> subprocess.Popen:
        from featurectl.server.log_writer import ROLL_BYTES, ROLL_SECONDS

        # `featurectl serve` checked the values before starting anything (_check_roll_settings)
        roll_bytes = int(float(os.environ.get(ROLL_BYTES_ENV) or ROLL_BYTES))
        roll_seconds = float(os.environ.get(ROLL_SECONDS_ENV) or ROLL_SECONDS)
        fds = (self._listener.fileno(), self._control)
        return subprocess.Popen(
            [sys.executable, "-m", "featurectl.server.log_writer", str(self.directory),
             "--listen-fd", str(fds[0]), "--control-fd", str(fds[1]),
             "--roll-bytes", str(roll_bytes), "--roll-seconds", str(roll_seconds)],
            # Its own session: a signal to the server's process group (Ctrl-C, `kill -- -PGID`)
            # does not reach it, even while it starts; it stops when the control pipe ends.
            pass_fds=fds, stdin=subprocess.DEVNULL, start_new_session=True)

    def _watch(self) -> None:
        from featurectl.server.metrics import restarts_counter

        restarts, backoff = None, 0.5
        while True:
            process = self.process
            started = time.monotonic()
            code = process.wait()
            with self._lock:
                if self._closing:
                    return
            if time.monotonic() - started > 60:
                backoff = 0.5
            print(f"featurectl serve: the feature-log writer (pid {process.pid}) exited with code {code}; "
                  f"restarting it in {backoff:g} s (rows it held are lost; serving goes on)",
                  file=sys.stderr, flush=True)
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            with self._lock:
                if self._closing:
                    return
                self.process = self._spawn()
            restarts = restarts or restarts_counter()
            restarts.inc()

    def close(self) -> None:
        with self._lock:
            self._closing = True
        os.close(self._stop)  # end of file for the writer: drain and exit
        try:
            self.process.wait(timeout=self.WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            print("featurectl serve: the feature-log writer did not finish in time; stopping it",
                  file=sys.stderr, flush=True)
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._control)
            self._listener.close()
            shutil.rmtree(self._private, ignore_errors=True)

    def __enter__(self) -> "LogWriterProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _metrics_directory(shared: bool) -> Iterator[None]:
    """With several workers or feature logging, prometheus-client's multiprocess mode: each
    process (worker, log writer) keeps its values in files and /metrics sums them. The directory is this run's own, new at start and removed at
    exit, so counters never add up files left by an earlier run (the library's documented
    requirement). A PROMETHEUS_MULTIPROC_DIR in the environment is where that directory is made,
    never used itself. One worker without logging keeps its metrics in memory."""
    parent = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if not shared:
        yield
        return
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    directory = tempfile.mkdtemp(prefix=f"featurectl-metrics-{os.getpid()}-", dir=parent or None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values = sys.modules.get("prometheus_client.values")
    if values is not None:  # imported before the variable was set: it would keep values in memory
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(directory, ignore_errors=True)


def _check_roll_settings() -> None:
    from featurectl.core.errors import UsageError

    for name, example in ((ROLL_BYTES_ENV, "134217728"), (ROLL_SECONDS_ENV, "600"), (LOG_BUFFER_ENV, "16777216")):
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
