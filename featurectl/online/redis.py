"""Redis online store: per entity one string, ``<17-digit event time><encoded value>``.

Keys are ``fc:<project>:<view>:v<major>:`` + the shared entity key encoding. The event time
is epoch microseconds plus `_OFFSET`, zero-padded to 17 digits, so string order is time
order: the write script compares a 17-byte GETRANGE of the stored record with the new one
(no number parsing in Lua) and replaces value and expiry with one SET. A plain string
rather than a hash also takes about a third less memory and makes a read one MGET.
Writes go through a Lua script so the newer-wins check and the update are atomic per entity;
a batch is cut into chunks of `chunk_size` entities, one script call each, streamed on one
connection and answered together (one round trip per batch). Small chunks keep each script
short, so concurrent readers wait at most a few ms behind a write.

Bookkeeping lives in the same server (a FLUSH empties it with the data): ``fc:_store_id``
holds the store's random id (a project name starts with a letter, so no namespace clashes),
and the hash ``fc:<project>:<view>:v<major>`` (the namespace without the trailing ':')
holds ``watermark`` and ``newest`` as 17-digit stamps like the records' own, so Lua compares
them as strings. Every write script keeps ``newest``; the watermark moves by one conditional
script that never sets it backwards.
"""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import pyarrow as pa
import pyarrow.compute as pc
import redis
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from featurectl.online.config import RedisOnlineConfig
from featurectl.core.errors import UsageError
from featurectl.core.secrets import mask_secrets, unencoded_url_problem
from featurectl.online import encoding
from featurectl.online.base import OnlineRows, OnlineStoreError, OnlineTable

_pack_command: Callable[[tuple], bytes] | None
try:  # redis[hiredis] brings it; the store works without it, only slower
    from hiredis import pack_command as _hiredis_pack_command
    _pack_command = _hiredis_pack_command
except ImportError:  # pragma: no cover
    _pack_command = None

_WIDTH = 17
_OFFSET = 5 * 10**16  # 17 digits then hold event times from year 385 to 3554

STORE_ID_KEY = b"fc:_store_id"

# KEYS[1]: the namespace's bookkeeping hash, KEYS[2]: the store id key, KEYS[2 + i]: n entity
# keys. ARGV[1]: '1' when the view has a ttl; ARGV[2]: a fresh store id, set if none exists;
# ARGV[2 + i]: the record for KEYS[2 + i]; with a ttl, ARGV[2 + n + i]: its expiry in epoch
# ms. A missing key reads as '' which sorts first. A SET without PXAT also clears an expiry
# left from an older ttl.
_WRITE = """
local n = #KEYS - 2
local expiring = ARGV[1] == '1'
local written, newest = 0, ''
redis.call('SET', KEYS[2], ARGV[2], 'NX')
for i = 1, n do
  local key, record = KEYS[i + 2], ARGV[i + 2]
  local stamp = string.sub(record, 1, 17)
  if redis.call('GETRANGE', key, 0, 16) <= stamp then
    if expiring then
      redis.call('SET', key, record, 'PXAT', ARGV[n + i + 2])
    else
      redis.call('SET', key, record)
    end
    written = written + 1
    if stamp > newest then newest = stamp end
  end
end
if newest ~= '' then
  local current = redis.call('HGET', KEYS[1], 'newest')
  if not current or current < newest then redis.call('HSET', KEYS[1], 'newest', newest) end
end
return written
"""

# KEYS[1]: the bookkeeping hash, KEYS[2]: the store id key; ARGV[1]: the new watermark stamp,
# ARGV[2]: a fresh store id. Returns the watermark in force afterwards.
_ADVANCE = """
redis.call('SET', KEYS[2], ARGV[2], 'NX')
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


_RANGE = "between the years 385 and 3554 for the Redis online store"


def _stamp(moment: datetime) -> bytes:
    micros = encoding.datetime_to_micros(moment)
    if not -_OFFSET <= micros < 10**_WIDTH - _OFFSET:
        raise ValueError(f"{moment.isoformat()} is not {_RANGE}")
    return b"%017d" % (micros + _OFFSET)


def _unstamp(stamp: bytes | str | None) -> datetime | None:
    return None if stamp is None else encoding.micros_to_datetime(int(stamp) - _OFFSET)


def _records(micros: pa.Int64Array, values: pa.BinaryArray) -> pa.BinaryArray:
    low, high = pc.min_max(micros).values()
    if low.as_py() < -_OFFSET or high.as_py() >= 10**_WIDTH - _OFFSET:
        raise ValueError(f"event timestamps must lie {_RANGE}")
    stamps = pc.utf8_lpad(pc.cast(pc.add(micros, _OFFSET), pa.string()), width=_WIDTH, padding="0")
    return pc.binary_join_element_wise(pc.cast(stamps, pa.binary()), values, pa.scalar(b"", pa.binary()))


def _expiries(micros: pa.Int64Array, ttl_seconds: int) -> pa.Int64Array:
    """Event time rounded up to the ms, plus ttl. Redis expires a key only when now > that,
    so a value exactly at now - ttl is still served; SET refuses values below 1."""
    ceil_ms = pc.divide(pc.add(micros, 999), 1000)  # truncates; exact ceil for times after 1970
    return pc.max_element_wise(pc.add(ceil_ms, ttl_seconds * 1000), 1)


def redact(url: str) -> str:
    """The URL with any password replaced by ***, fit for error messages."""
    return mask_secrets(url)


def _is_json(blob: bytes) -> bool:
    try:
        json.loads(blob)
    except ValueError:
        return False
    return True


def _meta_key(table: OnlineTable) -> bytes:
    """The namespace's bookkeeping hash: the entity key prefix without its trailing ':'."""
    return encoding.namespace(table).encode()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisOnlineStore:
    def __init__(self, url: str, chunk_size: int = 1_000, connect_timeout: float = 5.0, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._chunk = max(1, int(chunk_size))
        self._lock = threading.Lock()
        problem = unencoded_url_problem(url)
        if problem:
            raise UsageError(f"online_store.url {redact(url)} in featurectl.yaml cannot be parsed: {problem}")
        self._encoder = encoding.ValueEncoder()
        try:
            self._client = redis.Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=timeout)
        except (ValueError, RedisError) as exc:
            self._encoder.close()
            raise UsageError(f"online_store.url {redact(url)} in featurectl.yaml cannot be parsed: "
                             f"{mask_secrets(str(exc))}",
                             hint="write it as redis://[:PASSWORD@]HOST:PORT/DB with a numeric port and database") from None
        self._shas: dict[str, str] = {}

    @classmethod
    def from_config(cls, config: RedisOnlineConfig, root: Path) -> "RedisOnlineStore":
        return cls(config.url, connect_timeout=config.connect_timeout, timeout=config.timeout)

    def _error(self, doing: str, exc: BaseException) -> OnlineStoreError:
        if isinstance(exc, RedisTimeoutError):
            return OnlineStoreError(
                f"Redis online store {redact(self.url)}: {doing} failed: no answer within the timeout "
                f"({exc}); the server is hung or overloaded. Check it, or raise online_store.timeout / "
                "online_store.connect_timeout (seconds) in featurectl.yaml")
        if "WRONGTYPE" in str(exc):
            return OnlineStoreError(
                f"Redis online store {redact(self.url)}: {doing} failed: a key of view namespace holds a "
                "value of another type that featurectl did not write; something else uses featurectl's "
                "keys (fc:...). Delete those keys, or point online_store.url at a database of its own")
        return OnlineStoreError(
            f"Redis online store {redact(self.url)}: {doing} failed: {mask_secrets(str(exc))}; check that "
            "redis-server is running and reachable there, or fix online_store.url in featurectl.yaml"
        )

    def _script(self, script: str = _WRITE, reload: bool = False) -> str:
        """A script's SHA: loaded once, again when the server has lost it."""
        if reload or script not in self._shas:
            self._shas[script] = self._client.script_load(script)
        return self._shas[script]

    def _run(self, script: str, keys: Sequence[bytes], args: Sequence[Any]) -> Any:
        try:
            return self._client.evalsha(self._script(script), len(keys), *keys, *args)
        except NoScriptError:
            return self._client.evalsha(self._script(script, reload=True), len(keys), *keys, *args)

    def write(self, table: OnlineTable, batch: pa.RecordBatch) -> int:
        prefix = encoding.key_prefix(table)
        if batch.num_rows == 0:
            return 0
        keys = encoding.encode_keys(table, batch, prefix)
        micros = encoding.event_micros(batch)
        expiries = _expiries(micros, table.ttl_seconds) if table.ttl_seconds > 0 else None
        with self._lock:  # also guards the encoder's DuckDB connection
            records = _records(micros, self._encoder.encode(table, batch))
            try:
                return self._stream(_meta_key(table), keys, records, expiries)
            except RedisError as exc:
                raise self._error(f"writing view {table.view!r}", exc) from None

    def _chunk_args(self, meta: bytes, start: int, keys: pa.Array, records: pa.Array,
                    expiries: pa.Array | None) -> list:
        k = keys.slice(start, self._chunk).to_pylist()
        args = [len(k) + 2, meta, STORE_ID_KEY, *k, 0 if expiries is None else 1, uuid.uuid4().hex,
                *records.slice(start, self._chunk).to_pylist()]
        return args if expiries is None else args + expiries.slice(start, self._chunk).to_pylist()

    def _stream(self, meta: bytes, keys: pa.Array, records: pa.Array, expiries: pa.Array | None) -> int:
        """One EVALSHA per chunk, sent back to back on one connection and answered at the end:
        the server runs chunk k while this process prepares chunk k+1."""
        pool = self._client.connection_pool
        connection = pool.get_connection()
        try:
            sha = self._script()
            starts = range(0, len(keys), self._chunk)
            for start in starts:
                _send(connection, ("EVALSHA", sha, *self._chunk_args(meta, start, keys, records, expiries)))
            written, refused = 0, []
            for start in starts:
                try:
                    written += connection.read_response()
                except NoScriptError:  # script cache flushed or server restarted: that chunk did nothing
                    refused.append(start)
            if refused:
                sha = self._script(reload=True)
                for start in refused:
                    _send(connection, ("EVALSHA", sha, *self._chunk_args(meta, start, keys, records, expiries)))
                written += sum(connection.read_response() for _ in refused)
            return written
        except BaseException:
            connection.disconnect()  # replies may be left unread: never reuse this connection as is
            raise
        finally:
            pool.release(connection)

    def read(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]], features: Sequence[str],
             now: datetime) -> OnlineRows:
        prefix = encoding.key_prefix(table)
        encoded = [encoding.encode_key(table, key, prefix) for key in keys]
        stored: list[tuple[int, bytes] | None] = []
        if encoded:
            try:
                records = cast("list[bytes | None]", self._client.mget(encoded))  # no decode_responses
            except RedisError as exc:
                raise self._error(f"reading view {table.view!r}", exc) from None
            for key, record in zip(encoded, records):
                if record is not None and not record[:_WIDTH].isdigit():
                    raise self._foreign(table, key)
            stored = [None if r is None else (int(r[:_WIDTH]) - _OFFSET, r[_WIDTH:]) for r in records]
        try:
            return encoding.build_rows(table, stored, features, now)
        except json.JSONDecodeError:
            bad = next(k for k, r in zip(encoded, stored) if r is not None and not _is_json(r[1]))
            raise self._foreign(table, bad) from None

    def _foreign(self, table: OnlineTable, key: bytes) -> OnlineStoreError:
        return OnlineStoreError(
            f"Redis online store {redact(self.url)}: key {key.decode(errors='replace')!r} of view {table.view!r} "
            "holds a value featurectl did not write; something else uses featurectl's keys (fc:...). "
            "Delete that key (or point online_store.url at a database of its own) and rerun materialize")

    def delete_table(self, table: OnlineTable) -> None:
        """Delete every key of one (project, view, major) namespace (SCAN + UNLINK) and its bookkeeping."""
        pattern = _glob_escape(encoding.key_prefix(table).decode()) + "*"
        try:
            batch: list[bytes] = [_meta_key(table)]
            for key in self._client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self._client.unlink(*batch)
                    batch.clear()
            if batch:
                self._client.unlink(*batch)
        except RedisError as exc:
            raise self._error(f"deleting view {table.view!r}", exc) from None

    # ---- bookkeeping ------------------------------------------------------------------

    def store_id(self) -> str:
        try:
            fresh = uuid.uuid4().hex
            if self._client.set(STORE_ID_KEY, fresh, nx=True):
                return fresh
            stored = cast("bytes | None", self._client.get(STORE_ID_KEY))
        except RedisError as exc:
            raise self._error("reading the store id", exc) from None
        if stored is None:  # deleted between the two calls
            raise OnlineStoreError(f"Redis online store {redact(self.url)}: its store id was deleted while "
                                   "being read (was the store flushed?); run the command again")
        return stored.decode()

    def get_watermark(self, table: OnlineTable) -> datetime | None:
        try:
            return _unstamp(self._client.hget(_meta_key(table), "watermark"))
        except RedisError as exc:
            raise self._error(f"reading the watermark of view {table.view!r}", exc) from None

    def watermarks(self, tables: Sequence[OnlineTable]) -> list[datetime | None]:
        return self._meta_fields("watermark", tables, "reading the watermarks")

    def advance_watermark(self, table: OnlineTable, watermark: datetime) -> datetime:
        try:
            stamp = _stamp(watermark)
        except ValueError as exc:
            raise OnlineStoreError(f"cannot keep the watermark of view {table.view!r}: {exc}") from None
        try:
            in_force = _unstamp(self._run(_ADVANCE, [_meta_key(table), STORE_ID_KEY], [stamp, uuid.uuid4().hex]))
        except RedisError as exc:
            raise self._error(f"advancing the watermark of view {table.view!r}", exc) from None
        assert in_force is not None  # the script returns the watermark in force, never nil
        return in_force

    def newest_event_times(self, tables: Sequence[OnlineTable]) -> list[datetime | None]:
        return self._meta_fields("newest", tables, "reading the newest event times")

    def _meta_fields(self, field: str, tables: Sequence[OnlineTable], doing: str) -> list[datetime | None]:
        """One field of each table's bookkeeping hash, in one pipeline."""
        try:
            pipe = self._client.pipeline(transaction=False)
            for table in tables:
                pipe.hget(_meta_key(table), field)
            return [_unstamp(stamp) for stamp in pipe.execute()]
        except RedisError as exc:
            raise self._error(doing, exc) from None

    def close(self) -> None:
        self._client.close()
        self._encoder.close()
