"""Ctrl-C and SIGTERM: stop the command at once and remember why, for the exit code (128 + signal).

Libraries may swallow the exception the handler raises (DuckDB turns it into "RuntimeError:
Query interrupted"), so the signal received is also recorded and wins over whatever error
reaches the command."""
from __future__ import annotations

import signal

from featurectl.core.errors import Interrupted

_received: list[int] = []
NAMES: dict[int, str] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def _stop(signum: int, frame: object) -> None:
    first = not _received
    _received.append(signum)
    if first:  # a second Ctrl-C during the clean-up must not break the clean-up
        raise Interrupted(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM in the main thread (Python runs handlers there)."""
    for signum in NAMES:
        signal.signal(signum, _stop)


def received() -> int | None:
    """The first signal that stopped this process, if any."""
    return _received[0] if _received else None
