#!/usr/bin/env bash
# Create bench/.venv-feast: Feast 0.67 with the Redis online store and the DuckDB offline
# store, isolated from featurectl's own .venv (Feast is never a featurectl dependency).
# Idempotent (bench/peer_venv.sh): rerun reinstalls only when the pinned spec changes.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/peer_venv.sh"
peer_venv "$HERE/.venv-feast" 'import feast, redis, duckdb, ibis; print("feast", feast.__version__)' \
    'feast[redis,duckdb]==0.67.*'
