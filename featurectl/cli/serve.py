"""`featurectl serve`: the HTTP feature server (featurectl/server)."""
from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Annotated, Optional

import typer

from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt
from featurectl.core.errors import UsageError


def check_address(host: str, port: int) -> None:
    """Exit 2 naming --host or --port, before anything is announced, when the server could not
    listen there: a host that does not resolve or is not this machine's, a port in use or
    reserved. (The server binds again: another process may still take the port in between.)"""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"--host {host}: not an address or a name this machine resolves ({exc})",
                         hint="pass --host 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or a "
                              "local interface's address") from None
    family, kind, proto, _, address = addresses[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"--port {port}: {host}:{port} is already in use by another process",
                                 hint="stop the other server, or pass a free --port") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UsageError(f"--host {host}: not an address of this machine",
                                 hint="pass --host 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or "
                                      "a local interface's address") from None
            if exc.errno == errno.EACCES:
                raise UsageError(f"--port {port}: this user may not listen on {host}:{port}",
                                 hint="pass a --port above 1023") from None
            raise UsageError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})",
                             hint="pass another --host or --port") from None


@command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on: 127.0.0.1 for this machine only, "
                                                     "0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 6566,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Worker processes (default: one per CPU core).", min=1, show_default=False)] = None,
    log_features: Annotated[Optional[Path], typer.Option(
        "--log-features", metavar="DIR",
        help="Log every served value as Parquet files under DIR/<view>/ (an input of `featurectl drift`).")] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Serve online features over HTTP (Feast's feature-server API): /get-online-features, /push,
    /write-to-online-store, /health, /ready, /metrics.

    New applies are picked up without a restart. Bad options, a port in use or a bad
    repository exit 2, an unreachable registry 3, before the server starts. An online store
    that is down does not stop it: /ready answers 503 until the store is back.

    \b
    Example:
      featurectl serve --host 0.0.0.0 --port 6566 --workers 4 --log-features logs/
      curl -s localhost:6566/get-online-features \\
        -d '{"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}'

    \b
    Environment (docs/serving.md):
      FEATURECTL_SERVE_LOG_ROLL_BYTES, FEATURECTL_SERVE_LOG_ROLL_SECONDS  feature-log file limits
      FEATURECTL_SERVE_LOG_BUFFER_BYTES  a worker's feature-log buffer (beyond: dropped, counted)
      FEATURECTL_SERVE_SLICE_US  each worker's CPU slice in µs (default 100; 0: the kernel's)
    """
    from featurectl.server.run import serve as run_server

    check_address(host, port)
    run_server(repo, host, port, workers, log_features)
    return 0
