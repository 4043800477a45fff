"""`featurectl serve`: the HTTP feature server (featurectl/server)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt


@command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=0, max=65535)] = 6566,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Worker processes (default: one per CPU core).", min=1, show_default=False)] = None,
    log_features: Annotated[Optional[Path], typer.Option(
        "--log-features", help="Log every served value as Parquet files under DIR/<view>/.")] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Serve online features over HTTP (Feast's feature-server API): /get-online-features, /push,
    /write-to-online-store, /health, /ready, /metrics."""
    from featurectl.server.run import serve as run_server

    run_server(repo, host, port, workers, log_features)
    return 0
