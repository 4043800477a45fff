#!/usr/bin/env bash
# Create bench/.venv-evidently: Evidently 0.7.23 for the drift benchmark (bench/drift.py),
# isolated from featurectl's own .venv (Evidently is never a featurectl dependency).
# Idempotent: a stamp file records the pinned spec; rerun reinstalls only when it changes.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$HERE/.venv-evidently"
PYTHON="${PYTHON:-python3}"
# pandas 3 removed infer_dtype_from_object, which Evidently 0.7.23 imports.
SPEC='evidently==0.7.23 pandas<3'
STAMP="$VENV/.installed-stamp"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$SPEC" ]]; then
    exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check $SPEC pyarrow
"$VENV/bin/python" -c 'import evidently; print("evidently", evidently.__version__)'
echo "$SPEC" > "$STAMP"
