"""What one server process serves from: the online store and the applied definitions, the
latter re-read by a background thread and swapped in whole, so requests never wait on the
registry and always see one consistent revision."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from featurectl.app.retrieval import OnlineReader, build_reader
from featurectl.online.base import OnlineStoreError, OnlineTable
from featurectl.registry.base import RegistryError
from featurectl.sdk import FeatureStore


@dataclass(frozen=True)
class Health:
    ok: bool
    problems: tuple[str, ...] = ()


class ServingState:
    def __init__(self, repo: str | Path | None, on_refresh: Callable[["ServingState"], None] | None = None):
        self.store = FeatureStore(repo)  # the request path's online store connection
        self._registry_side = FeatureStore(repo)  # the refresher's own registry connection
        self.project = self.store.project
        self.interval = FeatureStore.serving_cache_seconds
        self.reader: OnlineReader | None = None
        self.registry_error: str | None = "the registry has not been read yet"
        self._on_refresh = on_refresh
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="featurectl-registry-refresh", daemon=True)

    def start(self, wait_seconds: float = 30.0) -> None:
        _ = self.store.online  # opened here, before the refresher thread and requests share it
        self._thread.start()
        self._first.wait(wait_seconds)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.store.close()

    def _loop(self) -> None:
        try:
            while True:
                self.refresh()
                self._first.set()
                if self._stop.wait(self.interval):
                    return
        finally:
            self._registry_side.close()  # SQLite connections close in the thread that made them

    def refresh(self) -> None:
        """Read the registry; a new revision becomes a new reader, swapped in by one assignment."""
        try:
            self.reader = build_reader(self.project, self._registry_side.registry, self.store.online, self.reader)
        except RegistryError as exc:
            self.registry_error = str(exc)
            return
        except Exception as exc:  # the refresher must outlive any surprise; /ready reports it
            self.registry_error = f"reading the registry failed: {type(exc).__name__}: {exc}"
            return
        self.registry_error = None
        if self._on_refresh is not None:
            self._on_refresh(self)

    def health(self) -> Health:
        """Ready when the registry was read at the last attempt and the online store answers."""
        problems = []
        if self.registry_error is not None:
            problems.append(f"registry: {self.registry_error}")
        try:
            probe = OnlineTable(self.project, "_ready_probe", 0, (("key", "string"),), (("x", "int64"),), 0)
            self.store.online.read(probe, [("probe",)], ["x"], _epoch())
        except OnlineStoreError as exc:
            problems.append(f"online store: {exc}")
        return Health(not problems, tuple(problems))


def _epoch():
    from datetime import datetime, timezone
    return datetime(1970, 1, 1, tzinfo=timezone.utc)
