"""Child process for the SIGKILL tests: materialize one view and kill itself with SIGKILL at
a chosen point (nothing is cleaned up, as after `kill -9` or a power cut).

Run: python -m tests.integration.kill_harness ROOT POINT N START END
POINT: `write` (before the Nth batch write, the first N-1 committed), `commit` (SQLite: the
Nth batch's rows upserted, before its COMMIT), `send` (Redis: after the Nth script call was
sent, before any reply is read), `send-node` (Redis Cluster: after the Nth burst of commands was
sent to a node, before any reply is read), `watermark` (every batch written, before the watermark moves).
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any

from featurectl.sdk import FeatureStore
from tests.integration.test_materialize import SmallBatches


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillOnCommit:
    """The SQLite connection, killing the process at its Nth COMMIT."""

    def __init__(self, con: Any, n: int) -> None:
        self._con, self._n, self._commits = con, n, 0

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            self._commits += 1
            if self._commits == self._n:
                die()
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def main(root: str, point: str, n: int, start: str, end: str) -> None:
    fs = FeatureStore(root, actor="tester")
    fs.offline = SmallBatches(fs.repo.root, fs.offline.config)
    online = fs.online
    calls = {"n": 0}

    def counted(real, after: bool = False):
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == n and not after:
                die()
            result = real(*args, **kwargs)
            if calls["n"] == n:
                die()
            return result
        return wrapper

    if point == "write":
        if hasattr(online, "write_prepared"):  # a store that splits its write: materialize calls this
            online.write_prepared = counted(online.write_prepared)
        else:
            online.write = counted(online.write)
    elif point == "commit":
        online._con = KillOnCommit(online._con, n)
    elif point == "send":
        import featurectl.online.redis as redis_store
        redis_store._send = counted(redis_store._send, after=True)
    elif point == "send-node":
        import featurectl.online.redis as redis_store
        redis_store._send_all = counted(redis_store._send_all, after=True)
    elif point == "watermark":
        online.advance_watermark = lambda *args: die()
    else:
        raise SystemExit(f"unknown point {point}")
    fs.materialize(start, end, views=["user_shop"])
    sys.exit(0)  # not reached when the point was hit: the parent expects death by SIGKILL


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
