#!/usr/bin/env bash
# Build an isolated virtual environment for a peer tool that featurectl is compared with, so the
# peer is never a featurectl dependency. Sourced by setup_feast.sh and setup_evidently.sh:
#
#   peer_venv DIR CHECK_PYTHON REQUIREMENT...
#
# Idempotent: a stamp file in DIR records the requirements; a rerun reinstalls only when they
# change. CHECK_PYTHON runs in the new environment last (an import check that prints versions).
set -euo pipefail

peer_venv() {
    local venv="$1" check="$2"
    shift 2
    local spec="$*"
    local stamp="$venv/.installed-stamp"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
        return 0
    fi
    test -x "$venv/bin/python" || "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
    "$venv/bin/python" -c "$check"
    echo "$spec" > "$stamp"
}
