#!/usr/bin/env bash
# Create bench/.venv-feast: Feast 0.67 with the Redis online store and the DuckDB offline
# store, isolated from featurectl's own .venv (Feast is never a featurectl dependency).
# Idempotent: a stamp file records the pinned spec; rerun reinstalls only when it changes.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$HERE/.venv-feast"
PYTHON="${PYTHON:-python3}"
SPEC='feast[redis,duckdb]==0.67.*'
STAMP="$VENV/.installed-stamp"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$SPEC" ]]; then
    exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$SPEC"
"$VENV/bin/python" -c 'import feast, redis, duckdb, ibis; print("feast", feast.__version__)'
echo "$SPEC" > "$STAMP"
