#!/usr/bin/env bash
# `make demo`: run the example repository end to end on the embedded default stores.
# Works on a copy, with sample data regenerated to end at the current hour so that the
# views' ttl lets values through on the online read.
set -euo pipefail
featurectl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
example=$2
work=$3
python=$(dirname "$featurectl")/python

rm -rf "$work" && mkdir -p "$work" && cp -r "$example" "$work/rides" && rm -rf "$work/rides/.featurectl"
cd "$work/rides"
"$python" data/make_sample_data.py --end now

bold=""; plain=""
if [ -t 1 ]; then bold=$'\033[1m'; plain=$'\033[0m'; fi   # no escape codes when piped
step() { printf '\n%s$ featurectl %s%s\n' "$bold" "$*" "$plain"; "$featurectl" "$@"; }

step validate
step plan
step apply
step plan --detailed-exitcode
step materialize-incremental now
step get-online --features driver_stats:conv_rate,driver_stats:avg_daily_trips,driver_stats:vehicle_type \
     -e driver_id=1001 -e driver_id=1002 --format table
step get-online --service driver_ranking -e driver_id=1001 -e customer_id=501
step get-historical --entities data/training_entities.csv \
     --features driver_stats:conv_rate,customer_profile:avg_spend,driver_customer_affinity:trips \
     --output training.parquet
"$python" - <<'PY'
import pyarrow.parquet as pq
print(pq.read_table("training.parquet").to_pandas().head(6).to_string(index=False))
PY
step history

# One HTTP read from `featurectl serve` (Feast's feature-server API), then a graceful stop.
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '\n%s$ featurectl serve --port %s --workers 1 &%s\n' "$bold" "$port" "$plain"
"$featurectl" serve --port "$port" --workers 1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health')" 2>/dev/null && break
    sleep 0.2
done
body='{"features": ["driver_stats:conv_rate", "driver_stats:avg_daily_trips"], "entities": {"driver_id": [1001, 1002]}}'
printf '\n%s$ curl -s -X POST http://127.0.0.1:%s/get-online-features?format=rows -d %s%s\n' "$bold" "$port" "'$body'" "$plain"
"$python" - "$port" "$body" <<'PY'
import sys, urllib.request
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/get-online-features?format=rows", data=sys.argv[2].encode())
print(urllib.request.urlopen(request).read().decode())
PY
kill -TERM "$server"; wait "$server" 2>/dev/null || true
trap - EXIT
step lineage driver_stats
step docs
printf '\nDemo finished in %s\n' "$work/rides"
printf 'Open the catalog: file://%s\n' "$work/rides/.featurectl/docs/index.html"
