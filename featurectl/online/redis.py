"""Redis online store, on one redis-server or on a Redis Cluster.

Per entity one string, ``<17-digit event time><encoded value>``. The event time is epoch
microseconds plus `_OFFSET`, zero-padded to 17 digits, so string order is time order: the
write script compares the first 17 bytes of the stored record with the new one's (no number
parsing in Lua), a chunk at a time (one MGET, one MSET of the winners). A plain string rather
than a hash also takes about a third less memory and makes a read one MGET. Writes go through
a Lua script so the newer-wins check and the update are atomic per chunk; a batch holds each
entity once (the latest row of a repeated key is kept first) and is cut into groups (below)
and each group into chunks of `chunk_size` entities, one script call each, streamed and
answered together (one round trip per batch and server). Small chunks keep each script short,
so concurrent readers wait at most a few ms behind a write.

Key layout, one server (`_Standalone`): entity keys are ``fc:<project>:<view>:v<major>:`` +
the shared entity key encoding; the hash ``fc:<project>:<view>:v<major>`` (the namespace
without the trailing ':') holds ``watermark`` and ``newest`` as 17-digit stamps like the
records' own, so Lua compares them as strings, and ``persistent`` while no key of the group can
hold an expiry (see `_WRITE`). One group: the whole batch.

Key layout, Redis Cluster (`_Cluster`): a script's keys must share one hash slot, so keys
carry a hash tag. An entity's bucket is the first byte of the MD5 of its entity key (256
buckets per namespace); its key is ``fc:{<project>:<view>:v<major>:<bb>}:`` + entity key
(``bb``: the bucket in two hex digits), and the bucket's hash ``fc:{<project>:<view>:v<major>:<bb>}``
holds its ``newest`` (and ``persistent``), in the same slot. A group is one bucket: its newer-wins script keeps its
values and its ``newest`` atomically, as on one server; `newest_event_times` takes the
greatest over the buckets. The watermark stays in ``fc:<project>:<view>:v<major>`` (a slot of
its own; one conditional script moves it). Groups are pipelined per node (all nodes are sent
their commands before any reply is read); MOVED, ASK and TRYAGAIN replies are re-sent where the
cluster says, NOSCRIPT after loading the script; a node that cannot be reached is a store
failure naming it. 256 buckets keep script calls long (a batch of n entities makes at most
256 + n / chunk_size calls) and spread each namespace over 256 slots (other slots for
each namespace, so many views spread over the whole cluster).

``fc:_store_id`` holds the store's random id (a project name starts with a letter, so no
namespace clashes). Keys do not expire unless `key_ttl_seconds` is set: the view's ttl is
applied when reading (docs/decisions.md, "Redis keys and expiry").
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence, cast

import redis
from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
from redis._parsers.hiredis import _HiredisParser
from redis._parsers.socket import SERVER_CLOSED_CONNECTION_ERROR as _SERVER_CLOSED
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.crc import key_slot
from redis.retry import Retry
from redis.exceptions import (AskError, BusyLoadingError, ClusterDownError, MovedError, NoScriptError, RedisClusterException,
                              RedisError, ResponseError, TryAgainError)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from featurectl.online.config import RedisOnlineConfig
from featurectl.core.errors import UsageError
from featurectl.core.secrets import mask_secrets, unencoded_url_problem
from featurectl.online import encoding
from featurectl.online.base import OnlineRows, OnlineStoreError, OnlineTable

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where the store writes: a read (`get-online`, the server) needs none of
# the data stack (encoding.py says the same for the encoder).

_pack_command: Callable[[tuple], bytes] | None
try:  # redis[hiredis] brings it; the store works without it, only slower
    from hiredis import pack_command as _hiredis_pack_command
    _pack_command = _hiredis_pack_command
except ImportError:  # pragma: no cover
    _pack_command = None

_WIDTH = 17
_OFFSET = 5 * 10**16  # 17 digits then hold event times from year 385 to 3554

STORE_ID_KEY = b"fc:_store_id"
_ERRORS = (RedisError, RedisClusterException)

# KEYS[1]: the hash keeping the group's `newest`, KEYS[1 + i]: n distinct entity keys (the
# writer keeps one record per key). ARGV[1]: the key expiry in seconds ('0': none); ARGV[1 + i]:
# the record for KEYS[1 + i]. Newer-wins in bulk: one MGET reads every stored record, the stamps
# are compared in Lua, one MSET writes the winners (a per-entity GETRANGE and SET cost twice the
# server time: each redis.call from Lua has a fixed cost). MGET reads a key of another type as
# nil, so when some are nil an EXISTS over the chunk tells those from absent keys, and a
# GETRANGE on each raises their WRONGTYPE before anything is written. On a first fill every key
# is absent and every record wins. A SET or MSET without EX also clears any expiry the key had.
#
# A record equal to the stored one is left in place (rewriting it costs a third of the
# script's server time on a repeated window) where that changes nothing: without an expiry to
# set, and only in a group whose hash says `persistent`, i.e. none of its keys can hold an
# expiry. That is set by the group's first write without one (no `newest` yet: no key written)
# and removed by any write with one; a group written before it existed is rewritten as before.
_WRITE = """
local n = #KEYS - 1
local expiry = tonumber(ARGV[1])
local meta = redis.call('HMGET', KEYS[1], 'newest', 'persistent')
local current, persistent = meta[1], meta[2]
local same = expiry == 0 and (persistent or not current)
local stored = redis.call('MGET', unpack(KEYS, 2))
local sub = string.sub
local absent = 0
for i = 1, n do
  if not stored[i] then absent = absent + 1 end
end
if absent > 0 and redis.call('EXISTS', unpack(KEYS, 2)) > n - absent then
  for i = 1, n do
    if not stored[i] then redis.call('GETRANGE', KEYS[i + 1], 0, 16) end
  end
end
local winners, m, newest, kept = {}, 0, '', 0
for i = 1, n do
  local record = ARGV[i + 1]
  local old = stored[i]
  if same and old == record then
    kept = kept + 1
  else
    local stamp = sub(record, 1, 17)
    if not old or sub(old, 1, 17) <= stamp then
      winners[m + 1] = KEYS[i + 1]
      winners[m + 2] = record
      m = m + 2
      if stamp > newest then newest = stamp end
    end
  end
end
if m > 0 then
  if expiry > 0 then
    for j = 1, m, 2 do redis.call('SET', winners[j], winners[j + 1], 'EX', expiry) end
  else
    redis.call('MSET', unpack(winners, 1, m))
  end
  if not current and expiry == 0 then
    redis.call('HSET', KEYS[1], 'newest', newest, 'persistent', '1')
  elseif not current or current < newest then
    redis.call('HSET', KEYS[1], 'newest', newest)
  end
end
if expiry > 0 and persistent then redis.call('HDEL', KEYS[1], 'persistent') end
return m / 2 + kept
"""
# Lua's unpack() returns at most ~8,000 values and MSET takes two per entity.
_MAX_CHUNK = 3_000

# KEYS[1]: the namespace's hash; ARGV[1]: the new watermark stamp. Returns the watermark in
# force afterwards.
_ADVANCE = """
local current = redis.call('HGET', KEYS[1], 'watermark')
if current and current >= ARGV[1] then return current end
redis.call('HSET', KEYS[1], 'watermark', ARGV[1])
return ARGV[1]
"""


def _send(connection: Any, args: tuple) -> None:
    """Send one command. With hiredis the arguments are packed in C in one call; redis-py's
    own packing first walks every argument in Python (a tenth of a second per 100k entities)."""
    if _pack_command is None:
        connection.send_command(*args)
    else:
        connection.send_packed_command([_pack_command(args)], check_health=False)


def _send_all(connection: Any, commands: Sequence[tuple]) -> None:
    """Send several commands in one write (packed by hiredis when it is there)."""
    if _pack_command is None:
        connection.send_packed_command(connection.pack_commands(commands), check_health=False)
    else:
        connection.send_packed_command([b"".join(map(_pack_command, commands))], check_health=False)


_RANGE = "between the years 385 and 3554 for the Redis online store"


def _stamp(moment: datetime) -> bytes:
    micros = encoding.datetime_to_micros(moment)
    if not -_OFFSET <= micros < 10**_WIDTH - _OFFSET:
        raise ValueError(f"{moment.isoformat()} is not {_RANGE}")
    return b"%017d" % (micros + _OFFSET)


def _unstamp(stamp: bytes | str | None) -> datetime | None:
    return None if stamp is None else encoding.micros_to_datetime(int(stamp) - _OFFSET)


def _records(micros: pa.Int64Array, values: pa.BinaryArray) -> pa.BinaryArray:
    import pyarrow as pa
    import pyarrow.compute as pc

    low, high = pc.min_max(micros).values()
    if low.as_py() < -_OFFSET or high.as_py() >= 10**_WIDTH - _OFFSET:
        raise ValueError(f"event timestamps must lie {_RANGE}")
    stamps = pc.utf8_lpad(pc.cast(pc.add(micros, encoding.int64_scalar(_OFFSET)), pa.string()), width=_WIDTH, padding="0")
    return pc.binary_join_element_wise(pc.cast(stamps, pa.binary()), values, encoding.binary_scalar(b""))


def _distinct(table: OnlineTable, batch: pa.RecordBatch, keys: pa.BinaryArray) -> bool:
    """Whether each entity is in the batch once. An integer key column is checked itself (~5 ms
    per 100k rows; their encoded keys take 10-30 ms): one column's values and its encoded keys
    repeat alike."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(table.join_keys) == 1:
        column = batch.column(batch.schema.get_field_index(table.join_keys[0][0]))
        if pa.types.is_integer(column.type):
            return len(pc.unique(column)) == len(keys)
    return len(pc.unique(keys)) == len(keys)


def _newest_per_key(keys: pa.BinaryArray, micros: pa.Int64Array, order: pa.Array | None) -> pa.Array:
    """The batch rows to write when `keys` repeat: per key the row with the greatest event
    time, the last of those on a tie, in batch order. That is the record writing every row in
    turn under newer-wins would leave; the write script compares each key with what is stored
    only, so it needs each key once. `micros` is in batch order; `order` gives the batch row of
    each of `keys` (None: the same order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(keys)
    row = pa.array(range(n), pa.int64()) if order is None else order.cast(pa.int64())
    rows = pa.table({"key": keys, "micros": micros.take(row), "row": row})
    rows = rows.take(pc.sort_indices(rows, [("key", "ascending"), ("micros", "ascending"), ("row", "ascending")]))
    ordered = rows.column("key").combine_chunks()
    last = pa.concat_arrays([pc.not_equal(ordered.slice(0, n - 1), ordered.slice(1)), pa.array([True])])
    winners = rows.column("row").combine_chunks().filter(last)
    return winners.take(pc.array_sort_indices(winners))


def redact(url: str) -> str:
    """The URL with any password replaced by ***, fit for error messages."""
    return mask_secrets(url)


def _meta_key(table: OnlineTable) -> bytes:
    """The namespace's bookkeeping hash: the entity key prefix without its trailing ':'."""
    return encoding.namespace(table).encode()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# ---- routing: group keys, run the commands of each group where they belong ----------------

# (hash slot, command): the slot routes it on a cluster; None on one server.
Command = tuple[Optional[int], tuple]
# (the hash keeping the group's `newest`, its slot, start, stop): rows [start, stop) of a
# batch's keys in the order `layout` returned them.
Group = tuple[bytes, Optional[int], int, int]


class _Standalone:
    """One redis-server: keys as featurectl has always written them, one group per batch, and
    every command sent down one connection before the replies are read."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        # Each thread keeps the connection it took from the pool: redis-py's checkout and return
        # (a lock, a health poll and its observability counters) cost ~25 µs, about half of a
        # 1-entity read's client CPU. (pid, connection): a forked child takes its own.
        self._kept = threading.local()

    def _connection(self) -> Any:
        """This thread's connection, checked as the pool checks one it hands out: a socket with
        something to read (the server closed it: a restart, its idle timeout) is reconnected."""
        kept = getattr(self._kept, "pair", None)
        if kept is None or kept[0] != os.getpid():
            kept = self._kept.pair = (os.getpid(), self.client.connection_pool.get_connection())
        connection = kept[1]
        try:
            stale = connection._sock is not None and connection.can_read()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            stale = True
        if stale:
            connection.disconnect()  # the next send connects again
        return connection

    def mget(self, keys: Sequence[bytes]) -> list[Any]:
        """One MGET on this thread's connection: a read's one round trip, with as little
        client work around it as redis-py's connection allows. With hiredis the command is
        packed in C and the reply is parsed by the connection's own hiredis reader, fed from
        its socket here: redis-py's send_packed_command and read_response wrap each in layers
        of checks, timeouts and error mapping (about a third of a 1-entity read's client CPU,
        bench/online_micro.py). Errors are redis-py's (its parser builds the error replies);
        a failed exchange disconnects, as redis-py does, so the next call connects again."""
        connection = self._connection()
        try:
            if connection._sock is None:
                connection.connect()
            parser = connection._parser
            # redis-py's hiredis parser keeps the socket, its reader and a buffer (private names,
            # checked here: a redis-py that renames them takes its own public path below).
            sock, reader, buffer = (getattr(parser, name, None) for name in ("_sock", "_reader", "_buffer"))
            if _pack_command is None or type(parser) is not _HiredisParser or sock is None or reader is None \
                    or buffer is None:
                connection.send_packed_command(connection.pack_command("MGET", *keys), check_health=False)
                return cast("list[Any]", connection.read_response())
            push = getattr(parser, "_hiredis_PushNotificationType", None)  # RESP3 (redis-py 8's default) may push
            try:
                sock.sendall(_pack_command(("MGET", *keys)))
                while True:
                    reply = reader.gets()
                    if reply is _NOT_ENOUGH_DATA:
                        read = sock.recv_into(buffer)
                        if not read:
                            raise RedisConnectionError(_SERVER_CLOSED)
                        reader.feed(buffer, 0, read)
                    elif push is not None and isinstance(reply, push):
                        parser.handle_push_response(reply)  # as redis-py's read_response does
                    else:
                        break
            except socket.timeout:
                raise RedisTimeoutError("Timeout reading from socket") from None
            except OSError as exc:
                raise RedisConnectionError(f"Error while talking to the server: {exc}") from None
            if isinstance(reply, Exception):  # an error reply, built by redis-py's parse_error
                raise reply
            return cast("list[Any]", reply)
        except BaseException:
            connection.disconnect()  # a reply may be left unread: never reuse this connection as is
            raise

    async def mget_batched(self, key_lists: list[list[bytes]]) -> list[list[Any]]:
        """The records of each key list, as `mget` reads them, from one MGET shared with the other
        reads this thread's event loop is running: a server worker's concurrent requests cost
        one round trip (one send, one wake-up of redis-server, one reply) between them instead
        of one each. The first read to wait leads: it yields one loop turn (every task already
        ready runs meanwhile and queues its keys behind it), then sends the MGET itself, hands
        each queued read its slice and goes on with its own without another turn; a lone
        request pays one loop turn, not the two of a callback and a future."""
        loop = asyncio.get_running_loop()
        batch = getattr(self._kept, "batch", None)
        if batch is None or batch[0] is not loop:  # a thread's first loop, or a new one (asyncio.run again)
            batch = self._kept.batch = (loop, [])
        waiting: list[tuple[list[list[bytes]], asyncio.Future | None]] = batch[1]
        if waiting:  # a leader is yielding its turn: join its MGET
            future = loop.create_future()
            waiting.append((key_lists, future))
            return await future
        waiting.append((key_lists, None))
        try:
            await asyncio.sleep(0)
        except BaseException:  # cancelled while yielding: the reads queued behind still get their MGET
            try:
                self._flush(waiting)
            except Exception:
                pass  # handed to each of them
            raise
        return self._flush(waiting)

    def _flush(self, waiting: list[tuple[list[list[bytes]], asyncio.Future | None]]) -> list[list[Any]]:
        """One MGET for every queued read: the followers' futures get their slices (or the
        error), the leader's (future None) are returned (or the error raised)."""
        batch = waiting[:]
        waiting.clear()
        keys = [key for key_lists, _ in batch for key_list in key_lists for key in key_list]
        try:
            records = self.mget(keys) if keys else []
        except Exception as exc:  # every read of the batch fails alike (and reconnects next time)
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_exception(exc)
            raise
        at = 0
        mine: list[list[Any]] = []
        for key_lists, future in batch:
            parts = []
            for key_list in key_lists:
                parts.append(records[at:at + len(key_list)])
                at += len(key_list)
            if future is None:
                mine = parts
            elif not future.done():  # a request cancelled meanwhile
                future.set_result(parts)
        return mine

    def layout(self, table: OnlineTable, batch: pa.RecordBatch,
               encoder: encoding.ValueEncoder) -> tuple[pa.BinaryArray, Optional[pa.Array], list[Group]]:
        """The batch's entity keys, the row order they are in (None: the batch's), its groups."""
        keys = encoding.encode_keys(table, batch, encoding.key_prefix(table))
        return keys, None, [(_meta_key(table), None, 0, len(keys))]

    def key(self, table: OnlineTable, key: Sequence[Any]) -> tuple[bytes, Optional[int]]:
        return encoding.encode_key(table, key, encoding.key_prefix(table)), None

    def newest_keys(self, table: OnlineTable) -> list[tuple[bytes, Optional[int]]]:
        return [(_meta_key(table), None)]

    def slot_of(self, key: bytes) -> Optional[int]:
        return None

    def scan_pattern(self, table: OnlineTable) -> str:
        return _glob_escape(encoding.key_prefix(table).decode()) + "*"

    def run(self, commands: Iterable[Command]) -> list[Any]:
        """Send every command, then read every reply: the replies in order, an error reply as
        its exception (the connection stays in step)."""
        connection = self._connection()
        try:
            count = 0
            for _, args in commands:
                _send(connection, args)
                count += 1
            replies: list[Any] = []
            for _ in range(count):
                try:
                    replies.append(connection.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            return replies
        except BaseException:
            connection.disconnect()  # replies may be left unread: never reuse this connection as is
            raise

    def load_script(self, script: str) -> str:
        return self.client.script_load(script)

    def close(self) -> None:
        self.client.close()


_BUCKETS = 256


@lru_cache(maxsize=4096)
def _buckets(namespace: str) -> tuple[pa.BinaryArray, tuple[bytes, ...], tuple[int, ...]]:
    """Per bucket of one namespace: the entity key prefix, the `newest` hash and their slot."""
    tags = [f"{{{namespace[3:]}:{b:02x}}}".encode() for b in range(_BUCKETS)]  # {project:view:vN:bb}
    metas = tuple(b"fc:" + tag for tag in tags)
    return (encoding.binary_array([meta + b":" for meta in metas]), metas,
            tuple(key_slot(tag) for tag in tags))


class _NodeDown(RedisConnectionError):
    """A cluster node that could not be reached (after the slot map was refreshed once)."""

    def __init__(self, node: str, cause: BaseException) -> None:
        super().__init__(f"node {node}: {cause}")
        self.node = node


# Replies that pass with time: a slot split mid-migration, a cluster electing or healing, a
# restarted node loading its snapshot.
_WAIT = (TryAgainError, ClusterDownError, BusyLoadingError)


class _NodePipe:
    """One node's share of a round: its connection, the commands sent on it (packed into writes
    of up to `_BURST` commands) and, when its connection failed, why."""

    _BURST = 64

    def __init__(self, name: str, pool: Any) -> None:
        self.name, self.pool = name, pool
        self.sent: list[tuple[int, bool]] = []  # (index, preceded by ASKING)
        self.buffer: list[tuple] = []
        self.error: BaseException | None = None
        self.unread = False  # replies may be waiting: the connection must not be reused as is
        self.connection: Any = None
        try:
            self.connection = pool.get_connection()  # it connects at once
        except (RedisConnectionError, OSError) as exc:
            self.error = exc

    def add(self, index: int, args: tuple, asked: bool) -> None:
        self.sent.append((index, asked))
        if asked:
            self.buffer.append(("ASKING",))
        self.buffer.append(args)
        if len(self.buffer) >= self._BURST:
            self.flush()

    def flush(self) -> None:
        if self.buffer and self.error is None:
            self.unread = True
            try:
                _send_all(self.connection, self.buffer)
            except RedisTimeoutError:
                raise  # a hung node: no retry, the timeout has been waited for once
            except (RedisConnectionError, OSError) as exc:
                self.error = exc
        self.buffer = []

    def read(self, replies: list[Any]) -> None:
        for index, asked in self.sent:
            if self.error is None:
                try:
                    if asked:
                        self.connection.read_response()  # ASKING's OK
                    replies[index] = self.connection.read_response()
                except ResponseError as exc:
                    replies[index] = exc
                except RedisTimeoutError:
                    raise
                except (RedisConnectionError, OSError) as exc:
                    self.error = exc
            if self.error is not None:
                replies[index] = _NodeDown(self.name, self.error)
        self.unread = self.error is not None

    def release(self) -> None:
        if self.connection is not None:
            if self.unread:
                self.connection.disconnect()
            self.pool.release(self.connection)


class _Cluster:
    """A Redis Cluster: tagged keys, one group per bucket (so per slot), commands pipelined per
    node. The client (redis-py's RedisCluster: slot map, node connections) is made on first
    use, so an unreachable cluster fails the command that needs it, naming what it was doing."""

    _REDIRECTS = 16  # MOVED/ASK rounds before giving up
    _RECONNECTS = 1  # connection failures retried once, after refreshing the slot map

    def __init__(self, connect: Callable[[], RedisCluster], settle_seconds: float) -> None:
        self._connect = connect
        self._client: RedisCluster | None = None
        self._settle = settle_seconds  # how long TRYAGAIN / CLUSTERDOWN replies are retried

    @property
    def client(self) -> RedisCluster:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def layout(self, table: OnlineTable, batch: pa.RecordBatch,
               encoder: encoding.ValueEncoder) -> tuple[pa.BinaryArray, Optional[pa.Array], list[Group]]:
        import pyarrow.compute as pc

        prefixes, metas, slots = _buckets(encoding.namespace(table))
        entities = encoding.encode_keys(table, batch)
        buckets = encoder.first_md5_byte(entities)
        order = pc.array_sort_indices(buckets)  # a stable sort: rows keep their order in a bucket
        ordered = buckets.take(order)
        runs = pc.run_end_encode(ordered)  # one run per bucket
        ends = runs.run_ends.to_pylist()
        keys = pc.binary_join_element_wise(prefixes.take(ordered), entities.take(order), encoding.binary_scalar(b""))
        groups = [(metas[b], slots[b], start, stop)
                  for b, start, stop in zip(runs.values.to_pylist(), [0, *ends[:-1]], ends)]
        return keys, order, groups

    def key(self, table: OnlineTable, key: Sequence[Any]) -> tuple[bytes, Optional[int]]:
        prefixes, _, slots = _buckets(encoding.namespace(table))
        entity = encoding.encode_key(table, key)
        bucket = hashlib.md5(entity).digest()[0]
        return prefixes[bucket].as_py() + entity, slots[bucket]

    def newest_keys(self, table: OnlineTable) -> list[tuple[bytes, Optional[int]]]:
        _, metas, slots = _buckets(encoding.namespace(table))
        return list(zip(metas, slots))

    def slot_of(self, key: bytes) -> Optional[int]:
        return key_slot(key)

    def scan_pattern(self, table: OnlineTable) -> str:
        """Every key of the namespace's buckets: values and their `newest` hashes."""
        return "fc:{" + _glob_escape(encoding.namespace(table)[3:]) + ":*"

    def run(self, commands: Iterable[Command]) -> list[Any]:
        """Send each command to the node serving its slot (every node's commands first, then
        the replies), and re-send those the cluster redirects: MOVED (the slot map is
        refreshed), ASK (once to the named node, after ASKING), TRYAGAIN, CLUSTERDOWN and LOADING
        (after a pause, for up to `settle_seconds`), and those of a node whose connection failed (once,
        after refreshing the slot map: a failover may have moved its slots). A command that is
        re-sent either did not run or runs again; the store's commands are safe to repeat.
        Returns the replies in order, an error reply as its exception."""
        sent: list[Command] = []
        replies: list[Any] = []
        asking: dict[int, ClusterNode] = {}

        def first() -> Iterator[tuple[int, Command]]:
            for command in commands:
                sent.append(command)
                replies.append(None)
                yield len(sent) - 1, command

        pending = self._round(first(), replies, asking)
        redirects = reconnects = 0
        waited, pause = 0.0, 0.02
        while pending:
            retry = [i for i in pending if isinstance(replies[i], Exception)
                     and isinstance(replies[i], (AskError, *_WAIT, _NodeDown))]
            if not retry:
                break
            down = [i for i in retry if isinstance(replies[i], _NodeDown)]
            if down:
                if reconnects >= self._RECONNECTS:
                    raise replies[down[0]]
                reconnects += 1
            if any(isinstance(replies[i], AskError) for i in retry):  # MOVED is an AskError too
                redirects += 1
                if redirects > self._REDIRECTS:
                    break  # the replies say why
            if any(isinstance(replies[i], _WAIT) for i in retry):
                if waited >= self._settle:
                    break
                time.sleep(pause)
                waited, pause = waited + pause, min(pause * 2, 0.5)
            for i in retry:
                reply = replies[i]
                if isinstance(reply, AskError) and not isinstance(reply, MovedError):
                    asking[i] = self._node(reply.host, reply.port)
            if down or any(isinstance(replies[i], MovedError) for i in retry):
                self.client.nodes_manager.initialize()
            pending = self._round(((i, sent[i]) for i in retry), replies, asking)
        return replies

    def _node(self, host: str, port: int) -> ClusterNode:
        node = self.client.get_node(host=host, port=port)
        return node if node is not None else ClusterNode(host, port)

    def _round(self, items: Iterable[tuple[int, Command]], replies: list[Any],
               asking: dict[int, ClusterNode]) -> list[int]:
        """Send `items` to their nodes, then read every reply into `replies`; returns the indices
        sent (each now holding its reply, error reply or _NodeDown)."""
        client = self.client
        pipes: dict[str, _NodePipe] = {}
        by_slot: dict[int, ClusterNode] = {}
        done: list[int] = []
        try:
            for i, (slot, args) in items:
                node = asking.pop(i, None)
                asked = node is not None
                if node is None:
                    assert slot is not None
                    node = by_slot.get(slot)
                    if node is None:
                        node = by_slot[slot] = client.nodes_manager.get_node_from_slot(slot)
                pipe = pipes.get(node.name)
                if pipe is None:
                    pipe = pipes[node.name] = _NodePipe(node.name, client.get_redis_connection(node).connection_pool)
                pipe.add(i, args, asked)
                done.append(i)
            for pipe in pipes.values():
                pipe.flush()
            for pipe in pipes.values():
                pipe.read(replies)
        finally:
            for pipe in pipes.values():
                pipe.release()
        return done

    def load_script(self, script: str) -> str:
        """SCRIPT LOAD on every primary (the SHA is the same everywhere)."""
        sha = ""
        for node in self.client.get_primaries():
            sha = self.client.get_redis_connection(node).script_load(script)
        return sha

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _cluster_client(url: str, nodes: Sequence[str] | None, connect_timeout: float,
                    timeout: float) -> Callable[[], RedisCluster]:
    """How to make the RedisCluster client: from the startup `nodes`, or from one node's URL."""
    options: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout, "socket_timeout": timeout,
        # A node that is down fails the command at once; `_Cluster.run` retries once itself.
        "retry": Retry(NoBackoff(), 1),
    }
    if nodes is not None:
        startup = [ClusterNode(*_host_port(node)) for node in nodes]
        return lambda: RedisCluster(startup_nodes=startup, **options)
    return lambda: RedisCluster.from_url(url, **options)


def _host_port(node: str) -> tuple[str, int]:
    host, _, port = node.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class _PreparedWrite:
    table: OnlineTable
    num_rows: int  # rows of the batch handed in
    groups: list[Group]
    keys: Any  # pa.BinaryArray, in group order
    records: Any  # pa.BinaryArray, beside keys


class RedisOnlineStore:
    def __init__(self, url: str, chunk_size: int = 1_000, connect_timeout: float = 5.0, timeout: float = 10.0,
                 *, cluster: bool = False, nodes: Sequence[str] | None = None,
                 key_ttl_seconds: int | None = None) -> None:
        self.url = url
        self.nodes = tuple(nodes) if nodes is not None else None
        self.cluster = cluster or self.nodes is not None
        self.timeout = timeout
        self.key_ttl_seconds = key_ttl_seconds
        self._chunk = min(max(1, int(chunk_size)), _MAX_CHUNK)
        self._lock = threading.Lock()
        self._shas: dict[str, str] = {}
        self._has_id = False
        if self.nodes is None:
            problem = unencoded_url_problem(url)
            if problem:
                raise UsageError(f"online_store.url {redact(url)} in featurectl.yaml cannot be parsed: {problem}")
        self._encoder = encoding.ValueEncoder()
        self._space: _Standalone | _Cluster
        try:
            if self.cluster:
                if self.nodes is None:
                    _check_cluster_url(url)
                connect = _cluster_client(url, self.nodes, connect_timeout, timeout)
                self._space = _Cluster(connect, settle_seconds=timeout)
            else:
                self._space = _Standalone(redis.Redis.from_url(url, socket_connect_timeout=connect_timeout,
                                                               socket_timeout=timeout))
        except (ValueError, RedisError) as exc:
            self._encoder.close()
            raise UsageError(f"online_store.url {redact(url)} in featurectl.yaml cannot be parsed: "
                             f"{mask_secrets(str(exc))}",
                             hint="write it as redis://[:PASSWORD@]HOST:PORT/DB with a numeric port and database"
                             ) from None

    @classmethod
    def from_config(cls, config: RedisOnlineConfig, root: Path) -> "RedisOnlineStore":
        return cls(config.url, connect_timeout=config.connect_timeout, timeout=config.timeout,
                   cluster=config.is_cluster, nodes=config.nodes, key_ttl_seconds=config.key_ttl_seconds)

    @property
    def client(self) -> Any:
        """redis-py's client: `redis.Redis`, or `RedisCluster` on a cluster (single-key commands
        go through it; it follows MOVED and ASK itself)."""
        return self._space.client

    @property
    def where(self) -> str:
        if self.nodes is not None:
            return f"Redis Cluster online store (nodes {', '.join(self.nodes)})"
        if self.cluster:
            return f"Redis Cluster online store {redact(self.url)}"
        return f"Redis online store {redact(self.url)}"

    def _error(self, doing: str, exc: BaseException) -> OnlineStoreError:
        text = mask_secrets(str(exc))
        fix = ("online_store.nodes" if self.nodes is not None else "online_store.url") + " in featurectl.yaml"
        if isinstance(exc, RedisTimeoutError):
            return OnlineStoreError(
                f"{self.where}: {doing} failed: no answer within the timeout ({exc}); the server is hung "
                "or overloaded. Check it, or raise online_store.timeout / online_store.connect_timeout "
                "(seconds) in featurectl.yaml")
        if "WRONGTYPE" in text:
            return OnlineStoreError(
                f"{self.where}: {doing} failed: a key of view namespace holds a value of another type that "
                "featurectl did not write; something else uses featurectl's keys (fc:...). Delete those keys, "
                f"or point {fix} at a database of its own")
        if isinstance(exc, _NodeDown) or (self.cluster and isinstance(exc, RedisConnectionError)):
            return OnlineStoreError(
                f"{self.where}: {doing} failed: a cluster node cannot be reached ({text}); its slots cannot "
                "be served. Restart that redis-server (or fail over to a replica) and rerun; values already "
                f"written stay. If no node is running, check {fix}")
        if isinstance(exc, ClusterDownError):
            return OnlineStoreError(
                f"{self.where}: {doing} failed: the cluster is down ({text}); a node is failing or not every "
                "slot is served. Check `redis-cli --cluster check` on a node and rerun")
        if self.cluster and ("cluster support disabled" in text or "Cluster mode is not enabled" in text):
            return OnlineStoreError(
                f"{self.where}: {doing} failed: the server is not a Redis Cluster node ({text}); drop "
                "`cluster: true` / `nodes` for one redis-server, or point at a cluster")
        if not self.cluster and isinstance(exc, MovedError):
            return OnlineStoreError(
                f"{self.where}: {doing} failed: the server is a Redis Cluster node (it answered MOVED); "
                "add `cluster: true` to online_store in featurectl.yaml")
        return OnlineStoreError(
            f"{self.where}: {doing} failed: {text}; check that redis-server is running and reachable there, "
            f"or fix {fix}")

    # ---- scripts ------------------------------------------------------------------------

    def _sha(self, script: str, reload: bool = False) -> str:
        """A script's SHA: loaded once, again (on every node) when a server has lost it."""
        if reload or script not in self._shas:
            self._shas[script] = self._space.load_script(script)
        return self._shas[script]

    def _run(self, commands: Callable[[], Iterator[Command]]) -> list[Any]:
        """Run `commands()` (EVALSHA commands of the SHA `_sha(_WRITE)` or plain ones), loading
        the script again and re-sending those a server refused with NOSCRIPT (a script flush,
        or a restarted node); any other error reply is raised."""
        sent: list[Command] = []

        def recorded() -> Iterator[Command]:
            for command in commands():
                sent.append(command)
                yield command

        replies = self._space.run(recorded())
        refused = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if refused:
            sha = self._sha(_WRITE, reload=True)
            again = self._space.run([(sent[i][0], ("EVALSHA", sha, *sent[i][1][2:])) for i in refused])
            for i, reply in zip(refused, again):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _ensure_id(self) -> None:
        """The store's id exists once it holds data (written on first use, never replaced)."""
        if not self._has_id:
            self.client.set(STORE_ID_KEY, uuid.uuid4().hex, nx=True)
            self._has_id = True

    # ---- values -------------------------------------------------------------------------

    # Rows per batch materialize hands this store (base.py): while the server runs one batch's
    # scripts, the offline store reads the next and `prepare_write` encodes it on materialize's
    # reading thread. Against one batch of 100k: the same CPU, peak RSS ~30 MB lower (smaller
    # arrays; docs/benchmarks.md). SQLite keeps 100k rows (a commit each costs it more).
    write_batch_rows = 25_000

    def write(self, table: OnlineTable, batch: pa.RecordBatch) -> int:
        return self.write_prepared(self.prepare_write(table, batch))

    def prepare_write(self, table: OnlineTable, batch: pa.RecordBatch) -> "_PreparedWrite":
        """Everything of a write but sending it: keys, groups and records (no I/O)."""
        encoding.namespace(table)  # a bad name is refused before anything else
        if batch.num_rows == 0:
            return _PreparedWrite(table, 0, [], None, None)
        with self._lock:  # guards the encoder's DuckDB connection
            micros = encoding.event_micros(batch)
            keys, order, groups = self._space.layout(table, batch, self._encoder)
            if not _distinct(table, batch, keys):  # a key twice (never from materialize's latest rows)
                batch = batch.take(_newest_per_key(keys, micros, order))
                micros = encoding.event_micros(batch)
                keys, order, groups = self._space.layout(table, batch, self._encoder)
            records = _records(micros, self._encoder.encode(table, batch))
        if order is not None:
            records = records.take(order)
        return _PreparedWrite(table, batch.num_rows, groups, keys, records)

    def write_prepared(self, prepared: "_PreparedWrite") -> int:
        """Send a prepared write and wait for its replies: the entities written."""
        if not prepared.groups:
            return 0
        try:
            self._ensure_id()
            replies = self._run(lambda: self._write_commands(prepared.groups, prepared.keys, prepared.records))
        except _ERRORS as exc:
            raise self._error(f"writing view {prepared.table.view!r}", exc) from None
        return sum(replies)

    def _write_commands(self, groups: list[Group], keys: pa.BinaryArray, records: pa.BinaryArray) -> Iterator[Command]:
        """One EVALSHA per chunk of each group, made as they are sent (the server runs chunk k
        while this process prepares chunk k+1)."""
        sha = self._sha(_WRITE)
        expiry = self.key_ttl_seconds or 0
        for meta, slot, start, stop in groups:
            for at in range(start, stop, self._chunk):
                n = min(self._chunk, stop - at)
                yield slot, ("EVALSHA", sha, n + 1, meta, *keys.slice(at, n).to_pylist(), expiry,
                             *records.slice(at, n).to_pylist())

    def read(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]], features: Sequence[str],
             now: datetime) -> OnlineRows:
        space = self._space
        stored: list[tuple[int, bytes] | None] = []
        if isinstance(space, _Standalone):  # one server: one MGET of every key
            prefix = encoding.key_prefix(table)
            encoded = [encoding.encode_key(table, key, prefix) for key in keys]
            if encoded:
                try:
                    found = space.mget(encoded)
                except _ERRORS as exc:
                    raise self._error(f"reading view {table.view!r}", exc) from None
                stored = self._stored(table, encoded, found)
            return self._rows(table, encoded, stored, features, now)
        located = [space.key(table, key) for key in keys]
        encoded = [key for key, _ in located]
        if encoded:
            by_slot: dict[Optional[int], list[int]] = {}
            for i, (_, slot) in enumerate(located):
                by_slot.setdefault(slot, []).append(i)
            groups = list(by_slot.values())
            try:
                replies = self._run(lambda: ((located[g[0]][1], ("MGET", *(encoded[i] for i in g))) for g in groups))
            except _ERRORS as exc:
                raise self._error(f"reading view {table.view!r}", exc) from None
            records: list[bytes | None] = [None] * len(encoded)
            for group, values in zip(groups, replies):
                for i, record in zip(group, values):
                    records[i] = record
            stored = self._stored(table, encoded, records)
        return self._rows(table, encoded, stored, features, now)

    async def read_batched(self, reads: Sequence[tuple[OnlineTable, Sequence[tuple[Any, ...]], Sequence[str]]],
                           now: datetime) -> list[OnlineRows]:
        """`read` of each (table, keys, features), awaited on an event loop: on one server the keys
        of every read, and of the reads of other requests waiting on the same loop, go in one
        MGET (`_Standalone.mget_batched`); a cluster's reads are made as `read` makes them."""
        space = self._space
        if not isinstance(space, _Standalone):
            return [self.read(table, keys, features, now) for table, keys, features in reads]
        encoded = []
        for table, keys, _ in reads:
            prefix = encoding.key_prefix(table)
            encoded.append([encoding.encode_key(table, key, prefix) for key in keys])
        try:
            replies = await space.mget_batched(encoded)
        except _ERRORS as exc:
            views = ", ".join(repr(table.view) for table, _, _ in reads)
            raise self._error(f"reading view {views}", exc) from None
        return [self._rows(table, keys, self._stored(table, keys, found), features, now)
                for (table, _, features), keys, found in zip(reads, encoded, replies)]

    def _stored(self, table: OnlineTable, encoded: list[bytes],
                records: list[bytes | None]) -> list[tuple[int, bytes] | None]:
        """(event micros, value) per record read, None where absent."""
        for key, record in zip(encoded, records):
            if record is not None and not record[:_WIDTH].isdigit():
                raise self._foreign(table, key)
        return [None if r is None else (int(r[:_WIDTH]) - _OFFSET, r[_WIDTH:]) for r in records]

    def _rows(self, table: OnlineTable, encoded: list[bytes], stored: list[tuple[int, bytes] | None],
              features: Sequence[str], now: datetime) -> OnlineRows:
        try:
            return encoding.build_rows(table, stored, features, now)
        except encoding.UnreadableValue:
            wanted = encoding.decoders(table, features)
            bad = next(k for k, r in zip(encoded, stored) if r is not None and not encoding.readable(r[1], wanted))
            raise self._foreign(table, bad) from None

    def _foreign(self, table: OnlineTable, key: bytes) -> OnlineStoreError:
        return OnlineStoreError(
            f"{self.where}: key {key.decode(errors='replace')!r} of view {table.view!r} holds a value "
            "featurectl did not write; something else uses featurectl's keys (fc:...). Delete that key (or "
            "point online_store.url at a database of its own) and rerun materialize")

    def delete_table(self, table: OnlineTable) -> None:
        """Delete every key of one (project, view, major) namespace (SCAN + UNLINK, on every
        node of a cluster) and its bookkeeping."""
        try:
            batch: list[bytes] = [_meta_key(table)]
            for key in self.client.scan_iter(match=self._space.scan_pattern(table), count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self.client.unlink(*batch)
                    batch.clear()
            if batch:
                self.client.unlink(*batch)
        except _ERRORS as exc:
            raise self._error(f"deleting view {table.view!r}", exc) from None

    # ---- bookkeeping ------------------------------------------------------------------

    def store_id(self) -> str:
        try:
            fresh = uuid.uuid4().hex
            if self.client.set(STORE_ID_KEY, fresh, nx=True):
                return fresh
            stored = cast("bytes | None", self.client.get(STORE_ID_KEY))
        except _ERRORS as exc:
            raise self._error("reading the store id", exc) from None
        if stored is None:  # deleted between the two calls
            raise OnlineStoreError(f"{self.where}: its store id was deleted while being read (was the store "
                                   "flushed?); run the command again")
        return stored.decode()

    def get_watermark(self, table: OnlineTable) -> datetime | None:
        try:
            return _unstamp(self.client.hget(_meta_key(table), "watermark"))
        except _ERRORS as exc:
            raise self._error(f"reading the watermark of view {table.view!r}", exc) from None

    def watermarks(self, tables: Sequence[OnlineTable]) -> list[datetime | None]:
        """Every table's watermark in one round trip per node (freshness over many views)."""
        metas = [_meta_key(table) for table in tables]
        try:
            replies = self._run(lambda: ((self._space.slot_of(key), ("HGET", key, "watermark")) for key in metas))
        except _ERRORS as exc:
            raise self._error("reading the watermarks", exc) from None
        return [_unstamp(stamp) for stamp in replies]

    def advance_watermark(self, table: OnlineTable, watermark: datetime) -> datetime:
        try:
            stamp = _stamp(watermark)
        except ValueError as exc:
            raise OnlineStoreError(f"cannot keep the watermark of view {table.view!r}: {exc}") from None
        meta = _meta_key(table)
        try:
            self._ensure_id()
            try:
                in_force = self.client.evalsha(self._sha(_ADVANCE), 1, meta, stamp)
            except NoScriptError:
                in_force = self.client.evalsha(self._sha(_ADVANCE, reload=True), 1, meta, stamp)
        except _ERRORS as exc:
            raise self._error(f"advancing the watermark of view {table.view!r}", exc) from None
        result = _unstamp(in_force)
        assert result is not None  # the script returns the watermark in force, never nil
        return result

    def newest_event_times(self, tables: Sequence[OnlineTable]) -> list[datetime | None]:
        """Per table the greatest `newest` of its hashes (one on a server, one per bucket on a cluster)."""
        located = [(i, key, slot) for i, table in enumerate(tables) for key, slot in self._space.newest_keys(table)]
        try:
            replies = self._run(lambda: ((slot, ("HGET", key, "newest")) for _, key, slot in located))
        except _ERRORS as exc:
            raise self._error("reading the newest event times", exc) from None
        newest: list[bytes | None] = [None] * len(tables)
        for (i, _, _), stamp in zip(located, replies):
            if stamp is not None and (newest[i] is None or stamp > cast(bytes, newest[i])):
                newest[i] = stamp
        return [_unstamp(stamp) for stamp in newest]

    def close(self) -> None:
        self._space.close()
        self._encoder.close()


def _check_cluster_url(url: str) -> None:
    """The URL parses, and names database 0: a cluster has no other (refused, not ignored)."""
    db = parse_url(url).get("db", 0)
    if int(db) != 0:
        raise ValueError(f"a Redis Cluster has only database 0, not {db}; end the URL with /0 or no path")
