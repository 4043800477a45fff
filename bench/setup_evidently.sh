#!/usr/bin/env bash
# Create bench/.venv-evidently: Evidently 0.7.23 for the drift benchmark (bench/drift.py),
# isolated from featurectl's own .venv (Evidently is never a featurectl dependency).
# Idempotent (bench/peer_venv.sh): rerun reinstalls only when the pinned spec changes.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/peer_venv.sh"
# pandas 3 removed infer_dtype_from_object, which Evidently 0.7.23 imports.
peer_venv "$HERE/.venv-evidently" 'import evidently; print("evidently", evidently.__version__)' \
    'evidently==0.7.23' 'pandas<3' pyarrow
