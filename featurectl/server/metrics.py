"""Prometheus metrics (prometheus-client). With several workers each process writes its
values to files in PROMETHEUS_MULTIPROC_DIR and /metrics sums them (the library's
multiprocess mode), so a scrape sees the whole server whichever worker answers it.

Freshness is not kept in gauges: each scrape runs the one freshness computation
(app/freshness.py, what `featurectl freshness` runs) and publishes its families as
`freshness --format prometheus` does, so /metrics and the CLI cannot disagree and no worker's
stale value outlives a push or a prune."""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the app)

# Sub-millisecond buckets: a served read takes a fraction of a millisecond.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                   0.5, 1.0, 2.5)


# Feature logging: rows written (by the writer process), rows dropped (by a worker whose
# buffer is full, or by the writer when a write fails), restarts of the writer (by the server).
LOG_WRITTEN = ("featurectl_feature_log_rows_total", "Feature-log rows written to Parquet")
LOG_DROPPED = ("featurectl_feature_log_dropped_rows_total",
               "Feature-log rows dropped because the writer fell behind, was down or failed to write")
LOG_RESTARTS = ("featurectl_feature_log_writer_restarts_total", "Restarts of the feature-log writer process")


def writer_counters() -> tuple[Counter, Counter]:
    """The log-writer process's counters (rows written, rows dropped), in the server's
    multiprocess directory, summed by a worker's /metrics with the workers' own."""
    return Counter(*LOG_WRITTEN, registry=None), Counter(*LOG_DROPPED, registry=None)



def restarts_counter() -> Counter:
    """The server process's count of feature-log writer restarts (multiprocess directory)."""
    return Counter(*LOG_RESTARTS, registry=None)


Families = list[tuple[str, str, list[tuple[dict[str, str], float]]]]


class FreshnessCollector(Collector):
    """Computed at collection time from `families()` (render.freshness.freshness_families)."""

    def __init__(self, families: Callable[[], Families]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for name, help_text, samples in self.families():
            family = GaugeMetricFamily(name, help_text, labels=["view", "major"])
            for labels, value in samples:
                family.add_metric([labels["view"], labels["major"]], value)
            yield family


class Metrics:
    def __init__(self, freshness: Callable[[], Families] | None = None) -> None:
        self.freshness = FreshnessCollector(freshness or list)
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = None if self._multiprocess else CollectorRegistry()
        # registry None (multiprocess mode): values live in the worker's files, not in a registry
        reg = self.registry
        self.requests = Counter("featurectl_requests_total", "HTTP requests by endpoint and status code",
                                ["endpoint", "status"], registry=reg)
        self.latency = Histogram("featurectl_request_duration_seconds", "HTTP request latency by endpoint and status",
                                 ["endpoint", "status"], buckets=LATENCY_BUCKETS, registry=reg)
        self.store_errors = Counter("featurectl_online_store_errors_total",
                                    "Online store failures met while serving", registry=reg)
        self.revision = Gauge("featurectl_registry_revision", "The registry revision being served",
                              multiprocess_mode="max", registry=reg)
        self.log_dropped = Counter(*LOG_DROPPED, registry=reg)
        self.log_writer_up: Gauge | None = None  # with feature logging only (feature_logging())
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}  # observe()'s labelled children
        if self.registry is not None:
            self.registry.register(self.freshness)

    def feature_logging(self) -> Gauge:
        """The gauge of a worker that logs features: 1 while its connection to the log-writer
        process is open and greeted; the lowest over the workers ("min": 0 when any has lost it)."""
        if self.log_writer_up is None:
            self.log_writer_up = Gauge("featurectl_feature_log_writer_up",
                                       "1 when the worker is connected to the feature-log writer process",
                                       multiprocess_mode="min", registry=self.registry)
        return self.log_writer_up

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        children = self._children.get((endpoint, status))
        if children is None:
            # labels() takes the metric's lock and checks its arguments on every call (~1.7 µs
            # of the ~3.8 an observation cost); the children it returns are the same each time.
            # Endpoints are ENDPOINTS or "other", statuses HTTP codes: the cache stays small.
            code = str(status)
            children = self._children[(endpoint, status)] = (self.requests.labels(endpoint, code),
                                                             self.latency.labels(endpoint, code))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self.freshness)
        return generate_latest(registry)
