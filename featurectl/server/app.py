"""The Starlette application: routes, error bodies, metrics. One instance per worker process."""
from __future__ import annotations

import asyncio
import gc
import itertools
import os
import sys
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurectl.app.freshness import freshness
from featurectl.core.errors import UsageError
from featurectl.online.base import OnlineStoreError
from featurectl.registry.base import RegistryError
from featurectl.render.freshness import freshness_families
from featurectl.render.values import column_encoder, encode_columns, timestamp_text
from featurectl.server.environment import LOG_BUFFER_ENV, LOG_SOCKET_ENV, REPO_ENV
from featurectl.server.metrics import CONTENT_TYPE_LATEST, Metrics
from featurectl.server.scheduling import configured_slice_us, request_slice
from featurectl.server.state import ServingState

if TYPE_CHECKING:
    from featurectl.server.log_channel import FeatureLogChannel

MAX_ENTITIES = 10_000  # per request; larger batches belong to get-historical
JSON = "application/json"
_EPOCH_TEXT = "1970-01-01T00:00:00Z"  # the event time of a value that has none, as Feast sends it


class ApiError(Exception):
    """An answer other than 200, with one of SPEC §8's error codes."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def _error_response(status: int, code: str, message: str) -> Response:
    return Response(_dumps({"error": code, "message": message}), status, media_type=JSON)


def _json(body: Any, status: int = 200) -> Response:
    return Response(_dumps(body), status, media_type=JSON)


async def _body(request: Request) -> dict[str, Any]:
    return _parse_body(await request.body())


def _parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of the request, whatever its Content-Type (Feast's client sends none)."""
    try:
        body = orjson.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "BAD_REQUEST", f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "the request body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str, default: Any = None) -> Any:
    value = body.get(name, default)
    if value is not None and not isinstance(value, kind):
        raise ApiError(400, "BAD_REQUEST", f"field '{name}' must be {what}")
    return value


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RequestIds:
    """Unique request ids (32 hex digits, as uuid4().hex) without a system call each: a random
    64-bit prefix per worker process, then a counter. uuid4 read the kernel's random source
    (getrandom) on every request."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


class Server:
    """The endpoints, bound to one process's serving state and metrics."""

    def __init__(self, state: ServingState, metrics: Metrics, logger: FeatureLogChannel | None = None):
        self.state, self.metrics, self.logger = state, metrics, logger
        self._request_ids = RequestIds()

    def _reader(self):
        reader = self.state.reader
        if reader is None:
            raise ApiError(503, "STORE_UNAVAILABLE", f"no applied definitions to serve: {self.state.registry_error}")
        return reader

    async def online_features(self, raw: bytes, query_format: str | None) -> tuple[bytes, str]:
        """POST /get-online-features: the encoded answer and its request id. The store read is
        awaited: the Redis store sends the reads of the requests this worker has in hand in one
        round trip (`read_columns_async`)."""
        body = _parse_body(raw)
        features = _field(body, "features", list, "a list of 'view:feature' references")
        service = _field(body, "feature_service", str, "a feature service name")
        entities = _field(body, "entities", dict, "an object of join key -> list of values")
        full = _field(body, "full_feature_names", bool, "true or false", False)
        if features is None and service is None:
            raise ApiError(400, "BAD_REQUEST", "give 'features' (a list of 'view:feature') or 'feature_service'")
        if not entities:
            raise ApiError(400, "BAD_REQUEST", "give 'entities': {join_key: [values...]}")
        for key, values in entities.items():
            if not isinstance(values, list):
                raise ApiError(400, "BAD_REQUEST", f"entities['{key}'] must be a list, one value per entity")
            if len(values) > MAX_ENTITIES:
                raise ApiError(400, "TOO_MANY_ENTITIES",
                               f"{len(values)} entities in one request; at most {MAX_ENTITIES} are served per request")
        if features is not None and not all(isinstance(f, str) for f in features):
            raise ApiError(400, "BAD_REQUEST", "field 'features' must be a list of 'view:feature' strings")
        now = _now()
        result = await self._reader().read_columns_async(features, entities, now, service=service,
                                                         full_feature_names=full)
        request_id = self._request_ids.next()
        response = _feast_response(result) if query_format != "rows" or self.logger is not None else None
        answer = _dumps(_rows(result) if query_format == "rows" else response)
        if self.logger is not None and response is not None:  # Feast's encoded values, not its event times
            self.logger.log(now, request_id, result, response)
        return answer, request_id

    async def push(self, request: Request) -> Response:
        """SPEC §8 push: {"feature_view" (or Feast's "push_source_name"), "df", "to": "online"}."""
        body = await _body(request)
        name = _field(body, "feature_view", str, "a feature view name") or _field(
            body, "push_source_name", str, "a feature view name")
        to = _field(body, "to", str, '"online"', "online")
        if to != "online":
            raise ApiError(400, "BAD_REQUEST", f"'to': {to!r} is not served; featurectl pushes to the online "
                           "store only (\"to\": \"online\"); offline data lives in the view's source files")
        return await self._write(name, body)

    async def write_to_online_store(self, request: Request) -> Response:
        """Feast's {"feature_view_name", "df"}, as Feast's `remote` online store sends it."""
        body = await _body(request)
        return await self._write(_field(body, "feature_view_name", str, "a feature view name"), body)

    async def _write(self, view: str | None, body: dict[str, Any]) -> Response:
        if not view:
            raise ApiError(400, "BAD_REQUEST", "name the feature view: 'feature_view' (or 'push_source_name')")
        df = _field(body, "df", dict, "an object of column -> list of values")
        if not df:
            raise ApiError(400, "BAD_REQUEST", "give the rows as 'df': {column: [values...]}")
        from featurectl.app.push import push  # pyarrow and DuckDB: at a worker's first push, not for reads

        reader = self._reader()
        store = self.state.store
        # DuckDB checks the rows: off the event loop, so reads keep flowing meanwhile.
        run = await run_in_threadpool(push, self.state.project, reader.defs, store.offline, store.online, view, df)
        if run.status == "failed":
            self.metrics.store_errors.inc()
            raise ApiError(503, "STORE_UNAVAILABLE", run.error or "the write failed")
        report = run.report
        if run.status == "invalid" and report is not None:
            violations = sum(report.violations.values())
            return _json({"error": "INVALID_ROWS",
                          "message": f"{violations} violation(s) in {report.rows_checked} row(s) for feature view "
                                     f"'{view}'; nothing was written: fix the rows or the view's declared "
                                     "dtype/nullable/constraints",
                          "report": {"view": report.view, "rows_checked": report.rows_checked,
                                     "violations": report.violations, "samples": report.samples}}, 422)
        return _json({"written": run.entities_written, "rows": run.rows_read})

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        health = self.state.health()
        if not health.ok:
            return _error_response(503, "STORE_UNAVAILABLE", "; ".join(health.problems))
        reader = self.state.reader
        return _json({"status": "ready", "registry_revision": reader.revision if reader else None})

    async def metrics_text(self, request: Request) -> Response:
        # Off the event loop: the freshness families read the online store's bookkeeping.
        return Response(await run_in_threadpool(self.metrics.render), media_type=CONTENT_TYPE_LATEST)


def _dumps(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)  # values are JSON-ready (render.values)


@lru_cache(maxsize=65_536)  # entities share event times (hourly batches): each is formatted once
def event_time_text(moment: datetime | None) -> str:
    """As Feast's server sends them (protobuf's Timestamp mapping): UTC with Z; none is the epoch."""
    return timestamp_text(moment) or _EPOCH_TEXT


def _feast_response(result) -> dict[str, Any]:
    """Feast's column shape: one result per name (join keys first), one value per entity."""
    count = len(next(iter(result.keys.values()))) if result.keys else 0
    epoch = [event_time_text(None)] * count
    present = ["PRESENT"] * count
    results = [{"values": column_encoder(result.key_dtypes.get(name))(values), "statuses": present,
                "event_timestamps": epoch} for name, values in result.keys.items()]
    texts: dict[int, list[str]] = {}  # the features of one view share one list of event times
    for column in result.features:
        times = texts.get(id(column.event_timestamps))
        if times is None:
            times = texts[id(column.event_timestamps)] = [event_time_text(t) for t in column.event_timestamps]
        results.append({"values": column_encoder(column.dtype)(column.values), "statuses": column.statuses,
                        "event_timestamps": times})
    return {"metadata": {"feature_names": [*result.keys, *(c.name for c in result.features)]}, "results": results}


def _rows(result) -> list[dict[str, Any]]:
    """One object per entity, as `get-online --format json` prints them."""
    columns = encode_columns(result.columns, result.dtypes)
    count = len(next(iter(columns.values()))) if columns else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


_JSON_HEADER = (b"content-type", JSON.encode())


class OnlineFeaturesEndpoint:
    """POST /get-online-features as a plain ASGI callable on uvicorn: no Request, Response or
    routing objects on the hot path (what they cost per request: docs/benchmarks.md). Its
    answers, errors included, are those of the Starlette endpoints: same bodies, same headers
    (content-length, content-type), the same error mapping (`_error_of`)."""

    def __init__(self, server: Server, metrics: Metrics):
        self.server, self.metrics = server, metrics

    async def __call__(self, scope, receive, send) -> None:
        await self.respond(scope, receive, send)

    async def respond(self, scope, receive, send) -> int:
        """Answer one request; the status sent (499: the client left before its body arrived)."""
        raw = await _read_body(receive)
        if raw is None:
            return 499
        headers = []
        try:
            body, request_id = await self.server.online_features(raw, _query_format(scope["query_string"]))
            status = 200
            headers.append((b"x-request-id", request_id.encode()))
        except Exception as exc:
            status, code, message = _error_of(exc, scope["path"], self.metrics)
            body = _dumps({"error": code, "message": message})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", b"%d" % len(body)), _JSON_HEADER, *headers]})
        await send({"type": "http.response.body", "body": body})
        return status


async def _read_body(receive) -> bytes | None:
    """The whole request body; None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _query_format(query: bytes) -> str | None:
    """`?format=` as Starlette's query_params reads it (latin-1, the last value wins)."""
    if not query:
        return None
    return dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)).get("format")


ENDPOINTS = {"/get-online-features", "/push", "/write-to-online-store", "/health", "/ready", "/metrics"}


class Instrumented:
    """ASGI wrapper: every request's endpoint, status and latency into the metrics, and every
    failure into a JSON error body (never a traceback)."""

    def __init__(self, app, metrics: Metrics, online: OnlineFeaturesEndpoint):
        self.app, self.metrics, self.online = app, metrics, online

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began = time.perf_counter()
        status = 500
        if scope["path"] == "/get-online-features" and scope["method"] == "POST":  # the hot path, unrouted
            try:
                status = await self.online.respond(scope, receive, send)
            finally:
                self.metrics.observe("/get-online-features", status, time.perf_counter() - began)
            return

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            path = scope["path"]
            self.metrics.observe(path if path in ENDPOINTS else "other", status, time.perf_counter() - began)


def _guarded(endpoint, metrics: Metrics):
    """The endpoint, with every failure answered as a JSON error body; the server keeps serving."""
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:
            return _error_response(*_error_of(exc, request.url.path, metrics))
    return guarded


def _error_of(exc: Exception, path: str, metrics: Metrics) -> tuple[int, str, str]:
    """(status, SPEC §8 code, message) of a failed request."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message
    if isinstance(exc, UsageError):
        return 400, exc.code, f"{exc}; {exc.hint}" if exc.hint else str(exc)
    if isinstance(exc, (OnlineStoreError, RegistryError)):
        metrics.store_errors.inc()
        return 503, "STORE_UNAVAILABLE", str(exc)
    # a bug: say so in the body and the log, and keep serving
    print(f"featurectl serve: unexpected {type(exc).__name__} on {path}: {exc}", file=sys.stderr)
    return 500, "INTERNAL", f"unexpected {type(exc).__name__}: {exc}"


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return _error_response(404, "NOT_FOUND", f"no endpoint {request.url.path}; endpoints: "
                               + ", ".join(sorted(ENDPOINTS)))
    if exc.status_code == 405:
        return _error_response(405, "BAD_REQUEST", f"{request.method} is not accepted on {request.url.path}")
    return _error_response(exc.status_code, "BAD_REQUEST", str(exc.detail))


def _publish_revision(metrics: Metrics):
    def publish(state: ServingState) -> None:
        if state.reader is not None:
            metrics.revision.set(state.reader.revision or 0)
    return publish


def _freshness_families(state: ServingState, metrics: Metrics):
    """At each scrape: `featurectl freshness` over the served definitions (every online view
    with a freshness_sla, its applied major), as `--format prometheus` publishes it. When the
    online store cannot be read the families are left out (unknown, never fresh) and counted."""
    def families():
        reader = state.reader
        if reader is None:
            return []
        try:
            result = freshness(state.project, reader.defs, state.store.online, None, _now(), None, "minor")
        except OnlineStoreError:
            metrics.store_errors.inc()
            return []
        return freshness_families(result)
    return families


def create_app(repo: str | None = None) -> Instrumented:
    """The ASGI app for one worker. uvicorn's worker processes call it (factory=True) with the
    repository handed down in the environment."""
    metrics = Metrics()
    state = ServingState(repo or os.environ.get(REPO_ENV), on_refresh=_publish_revision(metrics))
    metrics.freshness.families = _freshness_families(state, metrics)
    log_socket = os.environ.get(LOG_SOCKET_ENV)
    server = Server(state, metrics)

    @asynccontextmanager
    async def lifespan(app):
        # The event loop's thread, before the worker starts its own threads (they inherit it):
        # a short CPU slice, so a request waits less for a core shared with other tasks.
        request_slice(configured_slice_us())
        state.start()
        if log_socket:
            from featurectl.server.log_channel import BUFFER_BYTES, FeatureLogChannel

            limit = int(float(os.environ.get(LOG_BUFFER_ENV) or BUFFER_BYTES))
            server.logger = FeatureLogChannel(log_socket, metrics, asyncio.get_running_loop(), limit=limit)
        # What start-up made (modules, the first reader, ~45k objects) lives as long as the
        # worker: frozen out of the collector, a full collection no longer walks it (15 ms of
        # CPU each, 30-40 ms of stalled requests on a busy machine: docs/benchmarks.md).
        gc.freeze()
        try:
            yield
        finally:
            if server.logger is not None:
                # after the last request: every logged row handed to the writer, which the
                # server stops after its workers (server/run.py)
                server.logger.close()
            state.stop()
            print(f"featurectl serve: worker {os.getpid()} stopped; in-flight requests were answered",
                  file=sys.stderr, flush=True)

    online = OnlineFeaturesEndpoint(server, metrics)
    routes = [("/push", server.push, "POST"),
              ("/write-to-online-store", server.write_to_online_store, "POST"), ("/health", server.health, "GET"),
              ("/ready", server.ready, "GET"), ("/metrics", server.metrics_text, "GET")]
    app = Starlette(
        # /get-online-features is routed here too, for the 405 of another method (its POSTs
        # never reach the router: Instrumented answers them).
        routes=[Route("/get-online-features", online, methods=["POST"]),
                *(Route(path, _guarded(fn, metrics), methods=[method]) for path, fn, method in routes)],
        exception_handlers={HTTPException: cast(Any, _http_error)},
        lifespan=lifespan,
    )
    return Instrumented(app, metrics, online)
