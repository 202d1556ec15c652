#!/usr/bin/env bash
# Starts scripts/cluster.sh as a newcomer would (in a fresh directory) and
# checks it works: a file put through replica 1 reads back through
# replicas 2 and 3. CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/privicore-cluster-smoke.XXXXXX)
chmod 755 "$WORK"
API=18609
DIR=$WORK/cluster API_PORT=$API NATS_PORT=14822 PG_PORT=55811 scripts/cluster.sh >"$WORK/cluster.out" 2>&1 &
CLUSTER=$!
finish() {
  kill "$CLUSTER" 2>/dev/null || true
  wait "$CLUSTER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap finish EXIT
for _ in $(seq 1800); do
  grep -q "is running" "$WORK/cluster.out" && break
  kill -0 "$CLUSTER" 2>/dev/null || { cat "$WORK/cluster.out"; exit 1; }
  sleep 0.1
done
grep -q "is running" "$WORK/cluster.out" || { echo "the cluster did not start:"; cat "$WORK/cluster.out"; exit 1; }
P=$WORK/cluster/bin/privicore
export PRIVICORE_CONFIG_DIR=$WORK/cluster/cli
head -c 100000 /dev/urandom >"$WORK/in"
# The devices connect a moment after the engines are up.
for _ in $(seq 100); do
  [ "$("$P" storage list --server http://127.0.0.1:$API 2>/dev/null | grep -c true)" = 3 ] && break
  sleep 0.2
done
TOKEN=$("$P" put --server http://127.0.0.1:$API "$WORK/in")
for i in 1 2; do
  "$P" get --server "http://127.0.0.1:$((API + i))" "$TOKEN" -o "$WORK/out$i"
  cmp "$WORK/in" "$WORK/out$i"
done
echo "cluster.sh: put through replica 1, read back byte-exact through replicas 2 and 3"
