"""A serving worker's side of feature logging: hands each answered request to the server's
log-writer process (server/log_writer.py) over a Unix socket, without pyarrow, without
blocking, and without a system call per request.

Per request the worker appends one frame to a buffer: a fixed header (shape id, request time
in microseconds, entity count, request id) and a JSON payload of the values Feast's answer
holds, already encoded for it (one orjson call over lists the worker has), and each feature's
statuses, one string when they are all alike. Sending the answer's own bytes instead was
measured and dropped: the writer's parse of its event times and statuses cost more than the
worker saves (docs/benchmarks.md). Each request shape (key columns with their dtypes; view, feature, dtype
of every feature) is sent once per connection as its own frame and then named by its id.
The buffer goes to the socket at most every FLUSH_SECONDS from the event loop (sooner past
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
feature, dtype], ...]], or b"R" u32 shape id, i64 µs since the epoch, u32 entities, u8 id
length, the id, the payload (`payload()`).
"""
from __future__ import annotations

import asyncio
from array import array
import socket
import struct
from collections import deque
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

import orjson

RECORD = struct.Struct("<IcIqIB")  # length, b"R", shape id, request time µs, entities, id length
SHAPE = struct.Struct("<IcI")  # length, b"S", shape id
HELLO = b"H"
FLUSH_SECONDS = 0.05
SEND_BYTES = 256 * 1024
BUFFER_BYTES = 16 * 1024 * 1024  # per worker; beyond it requests are dropped and counted
RECONNECT_SECONDS = 1.0
CLOSE_SECONDS = 10.0

_SHAPE_OF = attrgetter("view", "feature", "dtype")
_STATUSES = attrgetter("statuses")
_VALUES = attrgetter("values")
_HEAD_LENGTH = struct.Struct("<I")
RAW = {"int64": "q", "float64": "d"}  # dtypes a column of which may go raw (8-byte values)
RAW_MIN_ENTITIES = 16
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def payload(result: Any, response: dict[str, Any]) -> bytes:
    """The length of a JSON head, the head [[values of each key and feature column, as encoded
    in Feast's answer, or null for a column sent raw], [each feature's statuses, one string
    when all alike]], then the raw columns in order. From RAW_MIN_ENTITIES entities on, an
    int64 or float64 column without nulls goes raw (8 bytes a value, this machine's byte
    order: `array` packs it in C, the writer wraps the bytes as an Arrow array), sparing the
    writer a Python object per value."""
    statuses = [s[0] if s and s.count(s[0]) == len(s) else s for s in map(_STATUSES, result.features)]
    values = [r["values"] for r in response["results"]]
    raws: list[bytes] = []
    if values and len(values[0]) >= RAW_MIN_ENTITIES:
        dtypes = [*result.key_dtypes.values(), *(f.dtype for f in result.features)]
        given = [*result.keys.values(), *map(_VALUES, result.features)]
        for index, (dtype, column) in enumerate(zip(dtypes, given)):
            code = RAW.get(dtype)
            if code is None:
                continue
            try:
                raws.append(array(code, column).tobytes())
            except (TypeError, OverflowError):  # a null, or a value not of the dtype: as JSON
                continue
            values[index] = None
    head = _dumps([values, statuses])
    return _HEAD_LENGTH.pack(len(head)) + head + b"".join(raws)


def record_frame(shape_id: int, micros: int, count: int, request_id: str, body: bytes) -> bytes:
    rid = request_id.encode()
    return RECORD.pack(RECORD.size - 4 + len(rid) + len(body), b"R", shape_id, micros, count, len(rid)) + rid + body


def shape_frame(shape_id: int, shape: tuple) -> bytes:
    payload = orjson.dumps([list(map(list, shape[0])), list(map(list, shape[1]))])
    return SHAPE.pack(SHAPE.size - 4 + len(payload), b"S", shape_id) + payload


class FeatureLogChannel:
    def __init__(self, address: str, metrics: Any, loop: asyncio.AbstractEventLoop, *, limit: int = BUFFER_BYTES):
        self.address, self.metrics, self.loop, self.limit = address, metrics, loop, limit
        self._shapes: dict[tuple, int] = {}
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
        """One answered request: its payload appended to the buffer, no system call. The payload
        is the encoded values of Feast's answer (`response`, JSON-ready already) and each
        feature's statuses, one string when all alike; the answer's event times are not logged."""
        count = len(next(iter(result.keys.values()), ()))
        body = payload(result, response)
        shape = (tuple(result.key_dtypes.items()), tuple(map(_SHAPE_OF, result.features)))
        shape_id = self._shapes.get(shape)
        if shape_id is None:
            shape_id = self._define(shape)
        frame = record_frame(shape_id, (request_time - _EPOCH) // _MICROSECOND, count, request_id, body)
        size = len(frame)
        if len(self._buffer) + size > self.limit:
            self.metrics.log_dropped.inc(count)
            return
        self._buffer += frame
        self._appended += size
        self._frames.append((self._appended, count))
        if len(self._buffer) >= SEND_BYTES:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            self.loop.call_later(FLUSH_SECONDS, self._flush)

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
