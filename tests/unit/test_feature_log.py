"""Feature logging's two halves, on real sockets, real pyarrow and real files: a worker's
channel (bounded buffer, drop and count, a lost writer's partial frame) and the writer's
Parquet side (the response's JSON decoded back to the served values, one table per view)."""
from __future__ import annotations

import asyncio
import math
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from featurectl.app.retrieval import FeatureColumn, OnlineResult
from featurectl.server import log_channel
from featurectl.server.app import _feast_response
from featurectl.server.feature_log import ParquetLog, PendingRows, arrow_type
from featurectl.server.log_channel import BATCH, SHAPE, FeatureLogChannel, _Batch, shape_frame
from featurectl.server.log_writer import Writer
from featurectl.server.metrics import Metrics

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
MICROS = (AT - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def column(name: str, dtype: str, values: list, view: str = "stats") -> FeatureColumn:
    return FeatureColumn(name, view, name, dtype, values, ["NOT_FOUND" if v is None else "PRESENT" for v in values],
                         [None] * len(values))


def result(drivers: list[int], *columns: FeatureColumn) -> OnlineResult:
    return OnlineResult({"driver_id": drivers}, list(columns), {"driver_id": "int64"})


def nan_as_text(value):
    """NaN != NaN: compare values with each NaN as a string."""
    if isinstance(value, list):
        return [nan_as_text(v) for v in value]
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def shape_of(r: OnlineResult) -> tuple:
    return (tuple(r.key_dtypes.items()), tuple((c.view, c.feature, c.dtype) for c in r.features))


def batch(*requests: tuple[str, OnlineResult]) -> _Batch:
    """The worker's batch of requests of one shape."""
    first = requests[0][1]
    out = _Batch(0, shape_of(first))
    for request_id, r in requests:
        out.add(MICROS, request_id, len(r.keys["driver_id"]), r, _feast_response(r))
    return out


def pending(*requests: tuple[str, OnlineResult]) -> PendingRows:
    """Each run of requests of one shape as one batch, as a worker frames them."""
    rows = PendingRows()
    runs: list[list[tuple[str, OnlineResult]]] = []
    for request in requests:
        if runs and shape_of(runs[-1][-1][1]) == shape_of(request[1]):
            runs[-1].append(request)
        else:
            runs.append([request])
    for run in runs:
        framed = batch(*run)
        rows.add(shape_of(run[0][1]), framed.rows, framed.frame()[BATCH.size:])
    return rows


def rows(directory) -> list[dict]:
    return [row for path in sorted(directory.rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def test_the_response_body_is_decoded_back_to_the_served_values_with_their_arrow_types(tmp_path):
    """NaN and ±inf (sent as strings), bytes (base64), timestamps (ISO with Z), float32 (shortest
    decimal), lists of them, nulls: read back as the in-worker writer wrote the values."""
    later = AT + timedelta(seconds=1)
    columns = [column("f64", "float64", [1.5, math.nan, math.inf, -math.inf, None]),
               column("f32", "float32", [0.1, 3.4e38, None, 1e-45, -2.5]),
               column("b", "bytes", [b"\x00\xff", b"", None, b"abc", b"\n"]),
               column("t", "timestamp", [AT, later, None, AT.replace(microsecond=0), later]),
               column("n", "int64", [1, None, -(2 ** 62), 0, 7]),
               column("s", "string", ["a", "", None, "é", "x"]),
               column("ok", "bool", [True, False, None, True, False]),
               column("lf", "list<float64>", [[1.0, math.nan], None, [], [math.inf], [None, 2.0]]),
               column("lt", "list<timestamp>", [[AT], None, [], [later, None], [AT]])]
    served = result([1, 2, 3, 4, 5], *columns)
    log = ParquetLog(tmp_path)
    assert log.write(pending(("a" * 32, served))) == 5
    log.close()
    (path,) = (tmp_path / "stats").glob("*.parquet")
    table = pq.read_table(path)
    expected = pa.table({"request_time": pa.array([AT] * 5, pa.timestamp("us", tz="UTC")),
                         "request_id": pa.array(["a" * 32] * 5), "driver_id": pa.array([1, 2, 3, 4, 5]),
                         **{k: v for c in columns for k, v in (
                             (c.feature, pa.array(c.values, arrow_type(c.dtype))),
                             (f"{c.feature}__status", pa.array(c.statuses, pa.string())))}})
    assert table.schema == expected.schema
    for name in expected.column_names:
        assert nan_as_text(table[name].to_pylist()) == nan_as_text(expected[name].to_pylist()), name


def test_two_feature_sets_of_one_view_in_one_flush_are_one_table_with_both_sets_of_columns(tmp_path):
    log = ParquetLog(tmp_path)
    log.write(pending(("a" * 32, result([1], column("rate", "float64", [0.5]))),
                      ("b" * 32, result([2], column("rate", "float64", [0.25]), column("n", "int64", [7]))),
                      ("c" * 32, result([3], column("rate", "float64", [0.75])))))
    log.close()
    (path,) = (tmp_path / "stats").glob("*.parquet")
    assert pq.read_schema(path).names == ["request_time", "request_id", "driver_id", "rate", "rate__status",
                                          "n", "n__status"]
    assert sorted((r["driver_id"], r["rate"], r["n"], r["n__status"]) for r in rows(tmp_path / "stats")) == [
        (1, 0.5, None, None), (2, 0.25, 7, "PRESENT"), (3, 0.75, None, None)]


def test_features_of_two_views_in_one_request_go_to_each_views_file(tmp_path):
    log = ParquetLog(tmp_path)
    log.write(pending(("a" * 32, result([1, 2], column("rate", "float64", [0.5, None]),
                                        column("score", "float64", [None, 2.0], view="recent")))))
    log.close()
    assert [(r["driver_id"], r["rate"], r["rate__status"]) for r in rows(tmp_path / "stats")] == [
        (1, 0.5, "PRESENT"), (2, None, "NOT_FOUND")]
    assert [(r["driver_id"], r["score"]) for r in rows(tmp_path / "recent")] == [(1, None), (2, 2.0)]


# --- the worker's channel -------------------------------------------------------------------

def unix_listener(folder, backlog: int) -> tuple[str, socket.socket]:
    """A listening Unix socket standing in for the writer: its address and the socket."""
    address = str(folder / "w.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(backlog)
    return address, listener


def read_frames(data: bytes) -> list[tuple[bytes, int]]:
    """(kind, rows) of each whole frame, and nothing of a trailing part."""
    frames, at = [], 0
    while len(data) - at >= 5 and len(data) - at >= 4 + int.from_bytes(data[at:at + 4], "little"):
        end = at + 4 + int.from_bytes(data[at:at + 4], "little")
        kind = data[at + 4:at + 5]
        frames.append((kind, BATCH.unpack_from(data, at)[3] if kind == b"B" else 0))
        at = end
    return frames


def receive_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_full_buffer_drops_and_counts_and_never_blocks_then_everything_kept_is_delivered(tmp_path):
    address, listener = unix_listener(tmp_path, backlog=1)
    metrics = Metrics()
    big = result(list(range(200)), column("rate", "float64", [0.5] * 200))
    body = _feast_response(big)
    size = len(batch(("0" * 32, big)).frame())

    async def serve() -> FeatureLogChannel:
        channel = FeatureLogChannel(address, metrics, asyncio.get_running_loop(), limit=size * 3)
        for i in range(400):  # nobody reads: the socket's buffer fills, then the channel's
            channel.log(AT, f"{i:032x}", big, body)
            channel._flush()  # each request its own frame (as when requests come slower than the flushes)
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)  # the loop's flushes
        return channel

    channel = asyncio.run(serve())
    dropped = metrics.log_dropped._value.get()
    assert dropped > 0 and dropped % 200 == 0, "whole requests are dropped, and counted by their rows"
    assert metrics.log_writer_up._value.get() == 0  # connected but never greeted
    conn, _ = listener.accept()
    reader = ThreadPoolExecutor(1).submit(receive_all, conn)  # the writer comes up and reads

    async def finish() -> None:
        channel.loop = asyncio.get_running_loop()
        channel.close()  # blocking send of what is kept, then the end of the stream

    asyncio.run(finish())
    assert metrics.log_dropped._value.get() == dropped, "what was kept is delivered"
    frames = read_frames(reader.result())
    records = [n for kind, n in frames if kind == b"B"]
    assert frames[0] == (b"S", 0)
    assert sum(records) + dropped == 400 * 200, "every request either delivered whole or counted"


def test_a_writer_lost_mid_frame_costs_that_frame_only_and_the_rest_goes_to_the_next_writer(tmp_path, monkeypatch):
    monkeypatch.setattr(log_channel, "RECONNECT_SECONDS", 0.05)
    address, listener = unix_listener(tmp_path, backlog=4)
    metrics = Metrics()
    served = result(list(range(50)), column("rate", "float64", [0.25] * 50))
    body = _feast_response(served)
    received: list[bytes] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        channel = FeatureLogChannel(address, metrics, loop)
        first, _ = listener.accept()
        first.sendall(log_channel.HELLO)
        await asyncio.sleep(0.05)
        assert metrics.log_writer_up._value.get() == 1
        channel._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the kernel takes a few frames only
        for i in range(40):
            channel.log(AT, f"{i:032x}", served, body)
            channel._seal_all()  # each request its own frame (as when requests come slower than the flushes)
        channel._flush()  # some of it into the socket now
        part = first.recv(SHAPE.size + 100 + BATCH.size + 10)  # the shape and a frame in part
        received.append(part)
        first.close()  # the writer dies mid-frame
        await asyncio.sleep(0.3)  # the loop sees the end, reconnects
        assert metrics.log_writer_up._value.get() == 0
        second, _ = listener.accept()
        second.sendall(log_channel.HELLO)
        await asyncio.sleep(0.05)
        assert metrics.log_writer_up._value.get() == 1
        reader = ThreadPoolExecutor(1).submit(receive_all, second)  # the next writer reads while the worker sends
        channel.close()
        received.append(reader.result())

    asyncio.run(scenario())
    before, after = (read_frames(data) for data in received)
    kinds_after = [kind for kind, _ in after]
    assert kinds_after[0] == b"S", "a new connection starts with the shape definitions"
    records_after = [n for kind, n in after if kind == b"B"]
    records_before = [n for kind, n in before if kind == b"B"]
    lost = metrics.log_dropped._value.get()
    assert lost == 50, "the frame the dead writer took in part is counted, nothing else"
    assert sum(records_before) + sum(records_after) + lost <= 40 * 50
    # what the kernel had taken for the dead writer beyond what it read is lost uncounted
    assert len(records_after) >= 1 and set(records_after) == {50}


def test_a_worker_gone_before_the_writer_accepts_it_still_has_its_rows_written(tmp_path):
    """At SIGTERM a worker may send what it holds and close before a (slow-starting) writer
    accepts its connection: the writer's greeting then fails, the rows must not."""
    address, listener = unix_listener(tmp_path, backlog=4)
    control, stop = os.pipe()
    served = result([1, 2], column("rate", "float64", [0.5, None]))
    worker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    worker.connect(address)
    worker.sendall(shape_frame(0, shape_of(served)) + batch(("a" * 32, served)).frame())
    worker.close()
    os.close(stop)  # the server's stop, before the writer ran at all
    writer = Writer(listener, control, tmp_path / "logs", roll_bytes=1 << 30, roll_seconds=600)
    writer.run()
    os.close(control)
    assert [(r["request_id"], r["driver_id"], r["rate"]) for r in rows(tmp_path / "logs")] == [
        ("a" * 32, 1, 0.5), ("a" * 32, 2, None)]


def test_batches_read_back_request_by_request_with_numeric_columns_raw_until_a_null_turns_them_json(tmp_path):
    """Requests of one shape travel as one batch, column by column: each request's values,
    id, time and statuses land on its own rows, whether the batch's statuses are all alike or not.
    int64/float64 columns (keys too) travel as raw bytes; a null turns that column of its batch
    into JSON (NaN and ±inf included); raw and JSON batches of one column join in one chunk."""
    n = 20
    whole = result(list(range(n)), column("x", "float64", [math.nan, math.inf] + [i / 3 for i in range(n - 2)]),
                   column("k", "int64", [2 ** 62] + list(range(n - 1))), column("s", "string", ["a"] * n))
    holey = result(list(range(100, 100 + n)), column("x", "float64", [None] + [0.5] * (n - 1)),
                   column("k", "int64", list(range(n))), column("s", "string", [None] * n))
    one = result([7], *(column(c.feature, c.dtype, c.values[2:3]) for c in whole.features))
    def raw_columns(framed) -> list[bool]:  # per column (key, x, k, s): sent as raw bytes
        head = framed.frame()[BATCH.size:]
        return [c is None for c in orjson.loads(head[4:4 + int.from_bytes(head[:4], "little")])[3]]

    raw = batch(("a" * 32, whole))
    assert raw_columns(raw) == [True, False, True, False], "key and k raw; x (a NaN: text in the answer) and s JSON"
    mixed = batch(("b" * 32, holey), ("c" * 32, one))
    assert raw_columns(mixed) == [True, False, True, False], "x's null turned it into JSON, the rest stays raw"
    assert mixed.statuses[0] == ["NOT_FOUND"] + ["PRESENT"] * n
    assert raw_columns(batch(("c" * 32, one))) == [True, True, True, False]
    served = [("a" * 32, whole), ("b" * 32, holey), ("c" * 32, one), ("d" * 32, whole)]
    received = PendingRows()
    for framed in (raw, mixed, batch(("d" * 32, whole))):
        received.add(shape_of(whole), framed.rows, framed.frame()[BATCH.size:])
    log = ParquetLog(tmp_path)
    assert log.write(received) == 3 * n + 1
    log.close()
    table = pq.read_table(next((tmp_path / "stats").glob("*.parquet")))
    assert table.schema.field("driver_id").type == pa.int64() and table.schema.field("k").type == pa.int64()
    assert table["request_id"].to_pylist() == ["a" * 32] * n + ["b" * 32] * n + ["c" * 32] + ["d" * 32] * n
    assert table["driver_id"].to_pylist() == [d for _, r in served for d in r.keys["driver_id"]]
    for index, name in enumerate(("x", "k", "s")):
        assert nan_as_text(table[name].to_pylist()) == nan_as_text(
            [v for _, r in served for v in r.features[index].values]), name
        assert table[f"{name}__status"].to_pylist() == [s for _, r in served for s in r.features[index].statuses]


def test_requests_of_one_shape_go_as_one_frame_per_flush_and_a_full_batch_goes_at_once(tmp_path, monkeypatch):
    """The writer gets one frame per shape and flush (no Python per request on its side), and
    a batch never holds more than BATCH_ROWS rows."""
    monkeypatch.setattr(log_channel, "BATCH_ROWS", 30)
    address, listener = unix_listener(tmp_path, backlog=1)
    metrics = Metrics()
    served = result([1, 2], column("rate", "float64", [0.5, None]))
    other = result([3], column("n", "int64", [4]))

    async def scenario() -> None:
        channel = FeatureLogChannel(address, metrics, asyncio.get_running_loop())
        for i in range(25):  # 50 rows: a frame of 30 at once, the other 20 at the flush
            channel.log(AT, f"{i:032x}", served, _feast_response(served))
        channel.log(AT, "f" * 32, other, _feast_response(other))
        assert [rows for _, rows in channel._frames] == [0, 30, 0]  # two shape definitions, one full batch
        channel._flush()
        channel.close()

    asyncio.run(scenario())
    conn, _ = listener.accept()
    assert read_frames(receive_all(conn)) == [(b"S", 0), (b"B", 30), (b"S", 0), (b"B", 20), (b"B", 1)]


def test_a_shape_is_kept_per_reader_plan_and_another_plan_with_other_dtypes_gets_its_own(tmp_path):
    """The channel keys shapes on the reader's resolved request (`OnlineResult.plan`): a
    registry change makes new plans, whose dtypes then make a new shape."""
    address, listener = unix_listener(tmp_path, backlog=1)
    before, after = object(), object()  # two reader plans, before and after an apply
    old = OnlineResult({"driver_id": [1]}, [column("rate", "float64", [0.5])], {"driver_id": "int64"}, before)
    new = OnlineResult({"driver_id": [2]}, [column("rate", "int64", [5])], {"driver_id": "int64"}, after)

    async def scenario() -> None:
        channel = FeatureLogChannel(address, Metrics(), asyncio.get_running_loop())
        for served in (old, old, new, old):
            channel.log(AT, "a" * 32, served, _feast_response(served))
        channel.close()

    asyncio.run(scenario())
    conn, _ = listener.accept()
    assert read_frames(receive_all(conn)) == [(b"S", 0), (b"S", 0), (b"B", 3), (b"B", 1)]
