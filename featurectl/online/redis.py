"""Redis online store: per entity a hash {t: event micros, v: encoded value}.

Keys are ``fc:<project>:<view>:v<major>:`` + the shared entity key encoding. Writes go
through a Lua script so the newer-wins check and the update are atomic per entity; a batch
is cut into chunks of `chunk_size` entities, one script call each, all pipelined in one
round trip. Reads are one script call returning (t, v) for every distinct requested key.
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import redis
from redis.exceptions import NoScriptError, RedisError

from featurectl.loading.config import RedisOnlineConfig
from featurectl.online import encoding
from featurectl.online.base import OnlineRows, OnlineStoreError, OnlineTable

# KEYS: n entity keys. ARGV[1]: ttl in ms (0: none); ARGV[2..n+1]: event micros;
# ARGV[n+2..2n+1]: values. Micros are exact as Lua doubles for years 1685..2255.
# Expiry: event time rounded up to the ms, plus ttl; Redis expires a key only when
# now > that, so a value exactly at now - ttl is still served.
_WRITE = """
local n = #KEYS
local ttl = tonumber(ARGV[1])
local written = 0
for i = 1, n do
  local key = KEYS[i]
  local ts = tonumber(ARGV[i + 1])
  local old = redis.call('HGET', key, 't')
  if (not old) or tonumber(old) <= ts then
    redis.call('HSET', key, 't', ARGV[i + 1], 'v', ARGV[n + i + 1])
    if ttl > 0 then
      redis.call('PEXPIREAT', key, math.floor((ts + 999) / 1000) + ttl)
    else
      redis.call('PERSIST', key)
    end
    written = written + 1
  end
end
return written
"""

_READ = """
local out = {}
for i, key in ipairs(KEYS) do
  local r = redis.call('HMGET', key, 't', 'v')
  out[2 * i - 1] = r[1]
  out[2 * i] = r[2]
end
return out
"""


def redact(url: str) -> str:
    """The URL with any password replaced by ***, fit for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisOnlineStore:
    def __init__(self, url: str, chunk_size: int = 10_000) -> None:
        self.url = url
        self._chunk = max(1, int(chunk_size))
        self._lock = threading.Lock()
        self._encoder = encoding.ValueEncoder()
        try:
            self._client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=60)
        except (ValueError, RedisError) as exc:
            self._encoder.close()
            raise self._error("parsing the URL", exc) from None
        self._shas: dict[str, str] = {}

    @classmethod
    def from_config(cls, config: RedisOnlineConfig, root: Any = None) -> "RedisOnlineStore":
        return cls(config.url, chunk_size=config.batch_size)

    def _error(self, doing: str, exc: BaseException) -> OnlineStoreError:
        return OnlineStoreError(
            f"Redis online store {redact(self.url)}: {doing} failed: {exc}; check that redis-server "
            "is running and reachable there, or fix online_store.url in featurectl.yaml"
        )

    def _sha(self, script: str, reload: bool = False) -> str:
        if reload or script not in self._shas:
            self._shas[script] = self._client.script_load(script)
        return self._shas[script]

    def write(self, table: OnlineTable, batch: pa.RecordBatch) -> int:
        prefix = (encoding.namespace(table) + ":").encode()
        if batch.num_rows == 0:
            return 0
        keys = encoding.encode_keys(table, batch, prefix).to_pylist()
        times = encoding.event_micros(batch).to_pylist()
        ttl_ms = int(table.ttl_seconds) * 1000
        with self._lock:  # also guards the encoder's DuckDB connection
            values = self._encoder.encode(table, batch).to_pylist()
            chunks = [
                (keys[s:s + self._chunk], times[s:s + self._chunk], values[s:s + self._chunk])
                for s in range(0, len(keys), self._chunk)
            ]
            try:
                return self._run_chunks(chunks, ttl_ms)
            except RedisError as exc:
                raise self._error(f"writing view {table.view!r}", exc) from None

    def _run_chunks(self, chunks: list[tuple[list, list, list]], ttl_ms: int) -> int:
        written, reload = 0, False
        while chunks:
            sha = self._sha(_WRITE, reload)
            pipe = self._client.pipeline(transaction=False)
            for k, t, v in chunks:
                pipe.evalsha(sha, len(k), *k, ttl_ms, *t, *v)
            results = pipe.execute(raise_on_error=False)
            # A chunk refused with NOSCRIPT (server restarted or flushed scripts) did nothing:
            # load the script again and resend just those chunks.
            retry = [c for c, r in zip(chunks, results) if isinstance(r, NoScriptError)]
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, NoScriptError):
                    raise result
            written += sum(r for r in results if isinstance(r, int))
            if retry and reload:
                raise NoScriptError("the write script vanished twice in a row")
            chunks, reload = retry, True
        return written

    def read(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]], features: Sequence[str],
             now: datetime) -> OnlineRows:
        prefix = (encoding.namespace(table) + ":").encode()
        encoded = [encoding.encode_key(table, key, prefix) for key in keys]
        unique = list(dict.fromkeys(encoded))
        stored: dict[bytes, tuple[Any, Any]] = {}
        if unique:
            try:
                try:
                    flat = self._client.evalsha(self._sha(_READ), len(unique), *unique)
                except NoScriptError:
                    flat = self._client.evalsha(self._sha(_READ, reload=True), len(unique), *unique)
            except RedisError as exc:
                raise self._error(f"reading view {table.view!r}", exc) from None
            stored = dict(zip(unique, zip(flat[0::2], flat[1::2])))
        return encoding.build_rows(table, [stored.get(key) for key in encoded], features, now)

    def delete_table(self, table: OnlineTable) -> None:
        """Delete every key of one (project, view, major) namespace (SCAN + UNLINK)."""
        pattern = _glob_escape(encoding.namespace(table) + ":") + "*"
        try:
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self._client.unlink(*batch)
                    batch.clear()
            if batch:
                self._client.unlink(*batch)
        except RedisError as exc:
            raise self._error(f"deleting view {table.view!r}", exc) from None

    def close(self) -> None:
        self._client.close()
        self._encoder.close()
