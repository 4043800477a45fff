"""A serving worker's side of feature logging: hands each answered request to the server's
log-writer process (server/log_writer.py) over a Unix socket, without pyarrow, without
blocking, and without a system call per request.

Per request the worker adds its values to the open batch of its request shape, column by
column (list.extend of the values Feast's answer holds, already encoded for it), with its
request id, time in microseconds, entity count and each feature's statuses (one string when
they are all alike): no serialization per request. Every FLUSH_SECONDS (sooner when a batch
reaches BATCH_ROWS rows) each open batch becomes one frame, one orjson call, so the writer
parses and converts whole columns with no Python per request (docs/benchmarks.md, stream
logcost: a frame per request cost the writer ~13 µs per 1-entity request, most of it per-request
Python). Sending the answer's own bytes instead was measured and dropped: the writer's parse of
its event times and statuses cost more than the worker saves. Each request shape (key columns
with their dtypes; view, feature, dtype of every feature) is sent once per connection as its
own frame and then named by its id.
The frames go to the socket at most every FLUSH_SECONDS from the event loop (sooner past
SEND_BYTES), with non-blocking sends; what the socket does not take waits for the loop's
writable callback. When the buffer holds `limit` bytes (the writer fell behind, or there is
none) a request is not logged and its rows are counted in
featurectl_feature_log_dropped_rows_total: serving never waits for the writer.

The writer greets every connection with one byte; `featurectl_feature_log_writer_up` is 1
from then until the connection ends (the loop's reader callback sees the end at once). A lost
writer's connection is retried every RECONNECT_SECONDS (the server restarts the writer);
meanwhile frames keep filling the buffer up to its limit and go to the next writer, less a
frame the old connection took in part (counted as dropped). Frames the dead writer had read
but not written yet are lost uncounted. `close()` (the worker's shutdown) sends what is
buffered, blocking up to CLOSE_SECONDS, and ends the connection.

Frame: u32 length of the rest, then b"S" u32 id + JSON [[[key, dtype], ...], [[view,
feature, dtype], ...]], or b"B" u32 shape id, u32 rows (entities) + JSON [[request ids],
[request times, µs since the epoch], [entities per request], [[values of a key or feature
column, all requests' entities in order], ...], [[each request's statuses of a feature: one
string when all alike, else one per entity], ...]] (`_Batch.frame()`).
"""
from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

import orjson

BATCH = struct.Struct("<IcII")  # length, b"B", shape id, rows
SHAPE = struct.Struct("<IcI")  # length, b"S", shape id
HELLO = b"H"
FLUSH_SECONDS = 0.05
SEND_BYTES = 256 * 1024
BATCH_ROWS = 4096  # a shape's open batch becomes a frame at this many rows, or at the flush
BUFFER_BYTES = 16 * 1024 * 1024  # per worker; beyond it requests are dropped and counted
RECONNECT_SECONDS = 1.0
CLOSE_SECONDS = 10.0

_SHAPE_OF = attrgetter("view", "feature", "dtype")
_STATUSES = attrgetter("statuses")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class _Batch:
    """The requests of one shape not yet framed, column by column: no object per request is
    kept but its id (a str) and, when its statuses of a feature differ, their list."""

    __slots__ = ("shape_id", "ids", "micros", "counts", "columns", "statuses", "rows")

    def __init__(self, shape_id: int, columns: int, features: int):
        self.shape_id = shape_id
        self.ids: list[str] = []
        self.micros: list[int] = []
        self.counts: list[int] = []
        self.columns: list[list[Any]] = [[] for _ in range(columns)]
        self.statuses: list[list[Any]] = [[] for _ in range(features)]
        self.rows = 0

    def add(self, micros: int, request_id: str, count: int, result: Any, response: dict[str, Any]) -> None:
        self.ids.append(request_id)
        self.micros.append(micros)
        self.counts.append(count)
        for column, answered in zip(self.columns, response["results"]):
            column += answered["values"]
        for statuses, given in zip(self.statuses, map(_STATUSES, result.features)):
            statuses.append(given[0] if given and given.count(given[0]) == len(given) else given)
        self.rows += count

    def frame(self) -> bytes:
        body = orjson.dumps([self.ids, self.micros, self.counts, self.columns, self.statuses],
                            option=orjson.OPT_NON_STR_KEYS)
        return BATCH.pack(BATCH.size - 4 + len(body), b"B", self.shape_id, self.rows) + body


def shape_frame(shape_id: int, shape: tuple) -> bytes:
    payload = orjson.dumps([list(map(list, shape[0])), list(map(list, shape[1]))])
    return SHAPE.pack(SHAPE.size - 4 + len(payload), b"S", shape_id) + payload


class FeatureLogChannel:
    def __init__(self, address: str, metrics: Any, loop: asyncio.AbstractEventLoop, *, limit: int = BUFFER_BYTES):
        self.address, self.metrics, self.loop, self.limit = address, metrics, loop, limit
        self._shapes: dict[tuple, int] = {}
        self._batches: dict[tuple, _Batch] = {}  # per shape, the requests not framed yet
        self._definitions: list[bytes] = []  # every shape frame, sent first on each new connection
        self._buffer = bytearray()
        # (stream offset where a frame ends, its rows): frames not wholly sent yet
        self._frames: deque[tuple[int, int]] = deque()
        # The buffer holds the stream's bytes [_sent, _appended); _boundary is the end of the
        # last frame wholly sent (below _sent when the oldest frame went out in part).
        self._appended = self._sent = self._boundary = 0
        self._sock: socket.socket | None = None
        self._scheduled = self._writing = self._closed = False
        self._up = metrics.feature_logging()
        self._up.set(0)
        self._connect()

    # --- the request path ------------------------------------------------------------------

    def log(self, request_time: datetime, request_id: str, result: Any, response: dict[str, Any]) -> None:
        """One answered request added to its shape's batch, no system call and no serialization.
        The values logged are those of Feast's answer (`response`, JSON-ready already) and each
        feature's statuses, one string when all alike; the answer's event times are not logged."""
        count = len(next(iter(result.keys.values()), ()))
        if not count:
            return  # no entity, no row
        if len(self._buffer) >= self.limit:
            self.metrics.log_dropped.inc(count)
            return
        shape = (tuple(result.key_dtypes.items()), tuple(map(_SHAPE_OF, result.features)))
        batch = self._batches.get(shape)
        if batch is None:
            batch = self._batches[shape] = _Batch(self._shapes.get(shape, -1), len(response["results"]),
                                                  len(result.features))
            if batch.shape_id < 0:
                batch.shape_id = self._define(shape)
        batch.add((request_time - _EPOCH) // _MICROSECOND, request_id, count, result, response)
        if batch.rows >= BATCH_ROWS:
            self._seal(shape, batch)
            if len(self._buffer) >= SEND_BYTES:
                self._flush()
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_later(FLUSH_SECONDS, self._flush)

    def _seal(self, shape: tuple, batch: _Batch) -> None:
        """A batch into the buffer as one frame."""
        del self._batches[shape]
        frame = batch.frame()
        self._buffer += frame
        self._appended += len(frame)
        self._frames.append((self._appended, batch.rows))

    def _seal_all(self) -> None:
        for shape, batch in list(self._batches.items()):
            self._seal(shape, batch)

    def _define(self, shape: tuple) -> int:
        shape_id = self._shapes[shape] = len(self._shapes)
        frame = shape_frame(shape_id, shape)
        self._definitions.append(frame)
        self._buffer += frame  # a definition is never dropped: it is small and once per shape
        self._appended += len(frame)
        self._frames.append((self._appended, 0))
        return shape_id

    # --- sending -----------------------------------------------------------------------------

    def _flush(self) -> None:
        self._scheduled = False
        self._seal_all()
        if self._sock is None or self._writing or not self._buffer:
            return
        self._send()
        if self._buffer and self._sock is not None:
            self._writing = True
            self.loop.add_writer(self._sock, self._on_writable)

    def _on_writable(self) -> None:
        self._send()
        if not self._buffer or self._sock is None:
            if self._sock is not None:
                self.loop.remove_writer(self._sock)
            self._writing = False

    def _send(self) -> None:
        assert self._sock is not None
        try:
            sent = self._sock.send(self._buffer)
        except BlockingIOError:
            return
        except OSError:
            self._lost()
            return
        self._consume(sent)

    def _consume(self, sent: int) -> None:
        del self._buffer[:sent]
        self._sent += sent
        frames = self._frames
        while frames and frames[0][0] <= self._sent:
            self._boundary = frames.popleft()[0]

    # --- the connection ----------------------------------------------------------------------

    def _connect(self) -> None:
        if self._closed:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # A Unix connect does not wait for the writer's accept, only for room in the
            # listening socket's backlog (the server holds it across writer restarts).
            sock.settimeout(RECONNECT_SECONDS)
            sock.connect(self.address)
            sock.sendall(b"".join(self._definitions))  # a new connection's empty buffer takes them
            sock.setblocking(False)
        except OSError:
            sock.close()
            self.loop.call_later(RECONNECT_SECONDS, self._connect)
            return
        self._sock = sock
        self.loop.add_reader(sock, self._on_readable)
        self._flush()

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._up.set(1)  # the writer's greeting
        else:
            self._lost()

    def _lost(self) -> None:
        """The writer's end closed: the frame it took in part is dropped, the rest kept for
        the next connection."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self.loop.remove_reader(sock)
        if self._writing:
            self.loop.remove_writer(sock)
            self._writing = False
        sock.close()
        self._up.set(0)
        if self._frames and self._sent > self._boundary:  # the oldest frame went in part
            end, rows = self._frames.popleft()
            self.metrics.log_dropped.inc(rows)
            del self._buffer[:end - self._sent]
            self._sent = self._boundary = end
        self.loop.call_later(RECONNECT_SECONDS, self._connect)

    def close(self) -> None:
        """Shutdown: everything buffered sent (blocking, bounded), then the connection ended."""
        self._closed = True
        self._seal_all()
        sock = self._sock
        if sock is None:
            self.metrics.log_dropped.inc(sum(rows for _, rows in self._frames))
            return
        self.loop.remove_reader(sock)
        if self._writing:
            self.loop.remove_writer(sock)
        try:
            sock.settimeout(CLOSE_SECONDS)
            sock.sendall(self._buffer)
            self._consume(len(self._buffer))
        except OSError:
            self.metrics.log_dropped.inc(sum(rows for _, rows in self._frames))
        finally:
            sock.close()
            self._sock = None
