"""A serving worker's side of feature logging: hands each answered request to the server's
log-writer process (server/log_writer.py) over a Unix socket, without pyarrow, without
blocking, and without a system call per request.

Per request the worker adds its values to the open batch of its request shape, column by
column (list.extend of the values Feast's answer holds, already encoded for it; int64 and
float64 columns into arrays of 8-byte values), with its request id, time in microseconds,
entity count and statuses: no serialization per request. Every FLUSH_SECONDS (sooner when a batch
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
feature, dtype], ...]], or b"B" u32 shape id, u32 rows (entities), u32 head length, the JSON
head [[request ids], [request times, µs since the epoch], [entities per request], [[values of
a key or feature column, all requests' entities in order, or null for a raw column], ...],
[each feature's statuses: one string when the batch has one, else one per entity]], then
each raw column's 8-byte values (`_Batch.frame()`).
"""
from __future__ import annotations

import asyncio
import socket
from array import array
import struct
from collections import deque
from datetime import datetime, timedelta, timezone
from operator import attrgetter, itemgetter
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
_VALUES_OF = itemgetter("values")
_HEAD_LENGTH = struct.Struct("<I")
RAW = {"int64": "q", "float64": "d"}  # dtypes whose columns travel as 8-byte values (this machine's order)
RAW_BUILD_ENTITIES = 16  # measured: array.fromlist 0.05 µs a column at 1 value, array() + extend 0.24 µs per 100 values vs 0.37
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class _Batch:
    """The requests of one shape not yet framed, column by column, extended by C loops
    (`map` over list.extend and array.extend: no Python per column or entity, and no object
    kept per request but its id). An int64 or float64 column is an `array` of 8-byte values
    (the writer wraps the bytes as an Arrow array, no parse, no Python object per value) until
    a request brings a null (or a NaN, which the answer encodes as text): that column of this
    batch then goes on as JSON values. Statuses are kept per entity and framed as one string
    per feature when the whole batch has one."""

    __slots__ = ("shape_id", "ids", "micros", "counts", "columns", "statuses", "rows", "_lists", "_list_at",
                 "_raws", "_raw_at", "_codes")

    def __init__(self, shape_id: int, shape: tuple):
        self.shape_id = shape_id
        dtypes = [dtype for _, dtype in shape[0]] + [dtype for _, _, dtype in shape[1]]
        self.ids: list[str] = []
        self.micros: list[int] = []
        self.counts: list[int] = []
        self.columns: list[Any] = [array(RAW[d]) if d in RAW else [] for d in dtypes]
        self.statuses: list[list[str]] = [[] for _ in shape[1]]
        self.rows = 0
        self._split()

    def _split(self) -> None:
        self._list_at = [i for i, c in enumerate(self.columns) if c.__class__ is list]
        self._raw_at = [i for i, c in enumerate(self.columns) if c.__class__ is not list]
        self._lists = [self.columns[i] for i in self._list_at]
        self._raws = [self.columns[i] for i in self._raw_at]
        self._codes = [column.typecode for column in self._raws]

    def add(self, micros: int, request_id: str, count: int, result: Any, response: dict[str, Any]) -> None:
        results = response["results"]
        any(map(list.extend, self._lists, map(_VALUES_OF, map(results.__getitem__, self._list_at))))
        if self._raws:
            given = map(_VALUES_OF, map(results.__getitem__, self._raw_at))
            try:
                if count < RAW_BUILD_ENTITIES:  # a few values: appended in place
                    any(map(array.fromlist, self._raws, given))
                else:  # many: an array built in one go (faster per value), then copied in
                    any(map(array.extend, self._raws, map(array, self._codes, given)))
            except (TypeError, OverflowError):
                self._unraw(results)
        any(map(list.extend, self.statuses, map(_STATUSES, result.features)))
        self.ids.append(request_id)
        self.micros.append(micros)
        self.counts.append(count)
        self.rows += count

    def _unraw(self, results: list[dict[str, Any]]) -> None:
        """A value an array does not take: this request's part of every raw column undone
        (array.extend stops at the bad value), then each column extended alone; the one that
        refuses becomes a list (its 8-byte values are already JSON-ready: finite floats, ints)."""
        for index in self._raw_at:
            column = self.columns[index]
            del column[self.rows:]
            try:
                column.extend(results[index]["values"])
            except (TypeError, OverflowError):
                del column[self.rows:]
                self.columns[index] = column.tolist() + results[index]["values"]
        self._split()

    def frame(self) -> bytes:
        """BATCH header, the u32 length of a JSON head [ids, times, counts, [each column's values,
        or null for a raw one], [each feature's statuses: one string for the batch, or one per
        entity]], then each raw column's bytes in order."""
        statuses = [s[0] if s and s.count(s[0]) == len(s) else s for s in self.statuses]
        head = orjson.dumps([self.ids, self.micros, self.counts,
                             [c if c.__class__ is list else None for c in self.columns], statuses],
                            option=orjson.OPT_NON_STR_KEYS)
        raws = [column.tobytes() for column in self.columns if column.__class__ is not list]
        body = b"".join([_HEAD_LENGTH.pack(len(head)), head, *raws])
        return BATCH.pack(BATCH.size - 4 + len(body), b"B", self.shape_id, self.rows) + body


def shape_frame(shape_id: int, shape: tuple) -> bytes:
    payload = orjson.dumps([list(map(list, shape[0])), list(map(list, shape[1]))])
    return SHAPE.pack(SHAPE.size - 4 + len(payload), b"S", shape_id) + payload


class FeatureLogChannel:
    def __init__(self, address: str, metrics: Any, loop: asyncio.AbstractEventLoop, *, limit: int = BUFFER_BYTES):
        self.address, self.metrics, self.loop, self.limit = address, metrics, loop, limit
        self._shapes: dict[tuple, int] = {}
        self._batches: dict[int, _Batch] = {}  # per shape id, the requests not framed yet
        self._plans: dict[int, tuple[Any, tuple, int]] = {}  # id(reader plan) -> (plan, shape, shape id)
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
        known = self._plans.get(id(result.plan))
        if known is None or known[0] is not result.plan:
            known = self._shape_of(result)
        shape_id = known[2]
        batch = self._batches.get(shape_id)
        if batch is None:
            batch = self._batches[shape_id] = _Batch(shape_id, known[1])
        batch.add((request_time - _EPOCH) // _MICROSECOND, request_id, count, result, response)
        if batch.rows >= BATCH_ROWS:
            self._seal(batch)
            if len(self._buffer) >= SEND_BYTES:
                self._flush()
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_later(FLUSH_SECONDS, self._flush)

    def _shape_of(self, result: Any) -> tuple[Any, tuple, int]:
        """(plan, shape, shape id) of a result, the shape defined when new. Kept per reader
        plan (the reader resolves a feature list once): building and hashing the shape cost
        ~1.4 µs a request. The entry holds the plan, so its id is not reused while kept."""
        shape = (tuple(result.key_dtypes.items()), tuple(map(_SHAPE_OF, result.features)))
        shape_id = self._shapes.get(shape)
        if shape_id is None:
            shape_id = self._define(shape)
        known = (result.plan, shape, shape_id)
        if result.plan is not None:
            self._plans[id(result.plan)] = known
        return known

    def _seal(self, batch: _Batch) -> None:
        """A batch into the buffer as one frame."""
        del self._batches[batch.shape_id]
        frame = batch.frame()
        self._buffer += frame
        self._appended += len(frame)
        self._frames.append((self._appended, batch.rows))

    def _seal_all(self) -> None:
        for batch in list(self._batches.values()):
            self._seal(batch)

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
