#!/usr/bin/env bash
# Make sure the server binaries the tests need are present: redis-server and redis-cli (tests
# start their own server on a free port, and a 3-node Redis Cluster made with
# `redis-cli --cluster create`), a local PostgreSQL (tests make a throwaway database on it),
# Graphviz's `dot` and Debian's chromium (the catalog site and its browser test), and a Java
# runtime for the Spark offline store (pyspark starts its JVM with the `java` on PATH).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)  # `redis-cli --cluster create` for the cluster tests
command -v pg_ctlcluster >/dev/null || command -v pg_ctl >/dev/null || need+=(postgresql)
command -v dot >/dev/null || need+=(graphviz)          # lineage graphs in `featurectl docs`
command -v chromium >/dev/null || need+=(chromium)     # the catalog's headless-browser test
command -v java >/dev/null || need+=(openjdk-17-jre-headless)  # Spark (offline_store type spark)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (missing)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# A PostgreSQL that is installed but stopped is started; one that is running is left alone.
if ! pg_isready -q -h 127.0.0.1 -p "${PGPORT:-5432}" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    for v in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
    done
  fi
fi
