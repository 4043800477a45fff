"""The feature-log writer: one process per `featurectl serve --log-features DIR`, the only one
that imports pyarrow (docs/serving.md, docs/decisions.md).

Started by `featurectl serve` (server/run.py) with two inherited descriptors: the listening
Unix socket the workers connect to (the server keeps it across writer restarts, so a restarted
writer accepts the connections made meanwhile) and the read end of a control pipe. It accepts
workers, greets each with one byte, reads their frames (server/log_channel.py: a frame is a
batch of requests of one shape) and keeps them until the next one-second tick (sooner when MAX_PENDING_ROWS are waiting), then
writes a row group per view (server/feature_log.py). SIGTERM and SIGINT are ignored: the
server stops its workers first (each sends what it holds and closes its connection), then
closes the control pipe; at that end of file, or when its parent dies and the pipe closes with
it, the writer accepts what is waiting, reads every connection to its end (at most
DRAIN_SECONDS), writes, closes its files and exits.

Its counters (rows written; rows of a failed write, as dropped) go to the server's
prometheus-client multiprocess directory, which `featurectl serve` always uses with feature
logging, so the workers' /metrics sums them with their own.
"""
from __future__ import annotations

import argparse
import gc
import os
import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from featurectl.server.log_channel import BATCH, HELLO, SHAPE

ROLL_BYTES = 128 * 1024 * 1024  # a file per view closes at this size on disk ...
ROLL_SECONDS = 600.0  # ... or this age, whichever comes first
DRAIN_SECONDS = 30.0
_LENGTH = struct.Struct("<I")
_BATCH_KIND, _SHAPE_KIND = ord("B"), ord("S")
READ_BYTES = 1024 * 1024


class _NoPandas:
    """pyarrow's `array()` probes for pandas and imports it when installed (~37 MB of RSS in
    this process); the writer never hands pandas objects to Arrow, so the probe finds none."""

    @staticmethod
    def find_spec(name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("the feature-log writer does not use pandas", name=name)
        return None


class _Connection:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()
        self.shapes: dict[int, tuple] = {}


class Writer:
    def __init__(self, listener: socket.socket, control: int, directory: Path, *, roll_bytes: int,
                 roll_seconds: float, flush_seconds: float = 1.0):
        import orjson

        from featurectl.server.feature_log import MAX_PENDING_ROWS, ParquetLog, PendingRows
        from featurectl.server.metrics import writer_counters

        self._loads, self._max_pending, self._pending_type = orjson.loads, MAX_PENDING_ROWS, PendingRows
        self.log = ParquetLog(directory, roll_bytes=roll_bytes, roll_seconds=roll_seconds)
        self.written, self.dropped = writer_counters()
        self.pending = PendingRows()
        self.flush_seconds = flush_seconds
        self.listener, self.control = listener, control
        listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(control, selectors.EVENT_READ, "control")
        self.connections: dict[socket.socket, _Connection] = {}

    def run(self) -> None:
        next_tick = time.monotonic() + self.flush_seconds
        closing_since: float | None = None
        while True:
            timeout = max(0.0, next_tick - time.monotonic())
            for key, _ in self.selector.select(timeout):
                if key.data == "accept":
                    self._accept()
                elif key.data == "control":
                    if not os.read(self.control, 4096):  # end of file: stop
                        self.selector.unregister(self.control)
                        closing_since = time.monotonic()
                        self._accept()  # connections made before the stop
                else:
                    self._read(key.data)
            if self.pending.rows >= self._max_pending:
                self._flush()
            if time.monotonic() >= next_tick:
                self._flush()
                self.log.roll_due()
                gc.collect()  # what the tick left: little (startup's objects are frozen)
                next_tick = time.monotonic() + self.flush_seconds
            if closing_since is not None and (not self.connections
                                              or time.monotonic() - closing_since > DRAIN_SECONDS):
                break
        for connection in list(self.connections.values()):
            self._read(connection)  # what a connection still holds (drain deadline reached)
        self._flush()
        self.log.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            try:
                sock.send(HELLO)
            except OSError:
                pass  # the worker has stopped already: what it sent before is still to be read
            connection = self.connections[sock] = _Connection(sock)
            self.selector.register(sock, selectors.EVENT_READ, connection)

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(connection.sock)
            connection.sock.close()
            del self.connections[connection.sock]
            return
        connection.buffer += data
        self._frames(connection)

    def _frames(self, connection: _Connection) -> None:
        buffer, at, size = connection.buffer, 0, len(connection.buffer)
        while size - at >= 5:
            length = _LENGTH.unpack_from(buffer, at)[0]
            end = at + 4 + length
            if end > size:
                break
            kind = buffer[at + 4]
            if kind == _BATCH_KIND:
                _, _, shape_id, rows = BATCH.unpack_from(buffer, at)
                self.pending.add(connection.shapes[shape_id], rows, bytes(buffer[at + BATCH.size:end]))
            elif kind == _SHAPE_KIND:
                shape_id = SHAPE.unpack_from(buffer, at)[2]
                keys, features = self._loads(bytes(buffer[at + SHAPE.size:end]))
                connection.shapes[shape_id] = (tuple(map(tuple, keys)), tuple(map(tuple, features)))
            at = end
        del buffer[:at]

    def _flush(self) -> None:
        pending, self.pending = self.pending, self._pending_type()
        if not pending.rows:
            return
        try:
            self.written.inc(self.log.write(pending))
        except Exception as exc:  # a full disk must not stop the writer
            self.dropped.inc(pending.rows)
            print(f"featurectl serve: feature log write failed: {type(exc).__name__}: {exc}", file=sys.stderr,
                  flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m featurectl.server.log_writer")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--roll-bytes", type=int, required=True)
    parser.add_argument("--roll-seconds", type=float, required=True)
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # the server says when to stop (the control pipe)
    sys.meta_path.insert(0, _NoPandas)
    listener = socket.socket(fileno=args.listen_fd)
    writer = Writer(listener, args.control_fd, args.directory, roll_bytes=args.roll_bytes,
                    roll_seconds=args.roll_seconds)
    # Parsing a second of payloads makes millions of lists and values at once: Python's cyclic
    # collector, triggered by allocations, walked them again and again (measured: 2-3x the
    # parse's CPU). The writer makes no cycles worth chasing; it collects once per tick.
    gc.freeze()
    gc.disable()
    writer.run()


if __name__ == "__main__":
    main()
