#!/usr/bin/env bash
# Runs privicore as a three-replica deployment on this machine, with
# processes only (no containers): PostgreSQL, a three-node NATS cluster
# with JetStream, three engines sharing them, and a demo profile with three
# storage devices. It is the topology of
# docs/operations.md and compose.yaml, minus the load balancer: clients
# call any replica.
#
#   scripts/cluster.sh            # start; Ctrl-C stops everything
#   DIR=/tmp/pc-cluster scripts/cluster.sh
#
# Optional environment: DIR (state; default ./privicore-cluster, kept
# across runs), DATABASE (a postgres:// URL to use instead of starting a
# server), API_PORT (first replica's port, default 8009; the others follow),
# NATS_PORT (first node's client port, default 4222), DEVICES (default 3;
# 0 for none), LOG_LEVEL (default warn), REPLICAS (engines and NATS
# nodes, default 3), PG_PORT (default 55432), SERVE_FLAGS (more flags for
# every engine), PPROF_PORT (replica i profiles on PPROF_PORT+i-1; none by
# default).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mkdir -p "${DIR:-./privicore-cluster}" && cd "${DIR:-./privicore-cluster}" && pwd)
API_PORT=${API_PORT:-8009}
NATS_PORT=${NATS_PORT:-4222}
ROUTE_PORT=$((NATS_PORT + 2000))
PG_PORT=${PG_PORT:-55432}
DEVICES=${DEVICES:-3}
LOG_LEVEL=${LOG_LEVEL:-warn}
REPLICAS=${REPLICAS:-3}
BIN=$DIR/bin
mkdir -p "$BIN" "$DIR/logs"
chmod 700 "$DIR"

say() { printf 'cluster: %s\n' "$*" >&2; }
PIDS=()
stop() {
  trap - EXIT INT TERM
  say "stopping"
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${PG_DATA:-}" ]; then as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true; fi
  exit 0
}
trap stop EXIT INT TERM

wait_for() { # wait_for WHAT URL|port…: until it answers, or give up after 30 s
  local what=$1; shift
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  say "$what did not come up; see $DIR/logs"; exit 1
}

say "building privicore and nats-server (the version in go.mod) into $BIN"
go build -o "$BIN/privicore" ./cmd/privicore
go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2
P=$BIN/privicore

# PostgreSQL: the given one, or a server of its own under $DIR/pg.
if [ -z "${DATABASE:-}" ]; then
  PG_BIN=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")")
  [ -x "$PG_BIN/initdb" ] || { say "no PostgreSQL (initdb) found: install it or set DATABASE=postgres://…"; exit 1; }
  PG_DATA=$DIR/pg
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
  if [ ! -d "$PG_DATA" ]; then
    mkdir -p "$PG_DATA"
    [ "$(id -u)" = 0 ] && chown nobody "$PG_DATA" && chmod 755 "$DIR"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$DIR/logs/initdb.log"
  fi
  [ "$(id -u)" = 0 ] && chmod 755 "$DIR"   # nobody must reach $DIR/pg
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1" start >/dev/null
  as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='privicore'" | grep -q 1 ||
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres privicore
  DATABASE="postgres://postgres@127.0.0.1:$PG_PORT/privicore?sslmode=disable"
fi

# The secrets every replica shares: the KEK sealing the engine's keys in
# the database, the callout key the engines sign device grants with, and
# the bus passwords.
KEYS=$DIR/keys
mkdir -p "$KEYS" && chmod 700 "$KEYS"
[ -f "$KEYS/kek" ] || "$P" kek generate "$KEYS/kek" >/dev/null
[ -f "$KEYS/callout.seed" ] || "$P" callout-key generate "$KEYS/callout.seed" >"$KEYS/callout.pub" 2>/dev/null
[ -f "$KEYS/bus-passwords" ] || (umask 077 && printf '%s %s\n' "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" \
  "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >"$KEYS/bus-passwords")
read -r ENGINE_PW SYS_PW <"$KEYS/bus-passwords"
ISSUER=$(cat "$KEYS/callout.pub")

# Three NATS nodes routed into one cluster, JetStream on, the engines the
# auth callout for every other connection (the devices).
ROUTES=""
for i in $(seq 0 $((REPLICAS - 1))); do ROUTES="$ROUTES${ROUTES:+, }nats://127.0.0.1:$((ROUTE_PORT + i))"; done
URLS="" SYS_URLS="" PLAIN=""
for i in $(seq 0 $((REPLICAS - 1))); do
  n=n$((i + 1))
  mkdir -p "$DIR/nats/$n"
  cat >"$DIR/nats/$n.conf" <<EOF
server_name: $n
listen: 127.0.0.1:$((NATS_PORT + i))
jetstream { store_dir: "$DIR/nats/$n" }
$([ "$REPLICAS" -gt 1 ] && echo "cluster { name: privicore, listen: 127.0.0.1:$((ROUTE_PORT + i)), routes: [ $ROUTES ] }")
accounts {
  SYS: { users: [ { user: sys, password: "$SYS_PW" } ] }
  PRIVICORE: { jetstream: enabled, users: [ { user: privicore, password: "$ENGINE_PW" } ] }
}
system_account: SYS
authorization {
  auth_callout { issuer: $ISSUER, account: PRIVICORE, auth_users: [ privicore, sys ] }
}
EOF
  chmod 600 "$DIR/nats/$n.conf"
  "$BIN/nats-server" -c "$DIR/nats/$n.conf" >"$DIR/logs/nats-$n.log" 2>&1 &
  PIDS+=($!)
  URLS="$URLS${URLS:+,}nats://privicore:$ENGINE_PW@127.0.0.1:$((NATS_PORT + i))"
  SYS_URLS="$SYS_URLS${SYS_URLS:+,}nats://sys:$SYS_PW@127.0.0.1:$((NATS_PORT + i))"
  PLAIN="$PLAIN${PLAIN:+,}nats://127.0.0.1:$((NATS_PORT + i))"
done
for i in $(seq 0 $((REPLICAS - 1))); do wait_for "NATS node $((i + 1))" bash -c "exec 3<>/dev/tcp/127.0.0.1/$((NATS_PORT + i))"; done

# Three engines on the one database and the one bus.
for i in $(seq 0 $((REPLICAS - 1))); do
  mkdir -p "$DIR/engine$((i + 1))" && chmod 700 "$DIR/engine$((i + 1))"
  "$P" serve --addr 127.0.0.1:$((API_PORT + i)) --ws-addr - --data-dir "$DIR/engine$((i + 1))" \
    --database "$DATABASE" --kek-file "$KEYS/kek" \
    --nats-url "$URLS" --nats-system-url "$SYS_URLS" --nats-callout-key "$KEYS/callout.seed" --nats-account PRIVICORE \
    --log-level "$LOG_LEVEL" ${PPROF_PORT:+--pprof-addr 127.0.0.1:$((PPROF_PORT + i))} ${SERVE_FLAGS:-} \
    >"$DIR/logs/engine$((i + 1)).log" 2>&1 &
  PIDS+=($!)
  # The first replica creates the keys and the schema; the others follow it.
  [ "$i" = 0 ] && wait_for "engine 1" curl -fs http://127.0.0.1:$API_PORT/health
done
for i in $(seq 1 $((REPLICAS - 1))); do wait_for "engine $((i + 1))" curl -fs http://127.0.0.1:$((API_PORT + i))/health; done

# A demo profile and its storage devices, enrolled through replica 1.
export PRIVICORE_CONFIG_DIR=$DIR/cli
DEMO_PW=$(cat "$DIR/demo-password" 2>/dev/null || (umask 077 && head -c 12 /dev/urandom | base64 | tr '+/' 'xy' | tee "$DIR/demo-password"))
S=--server=http://127.0.0.1:$API_PORT
if [ "$DEVICES" -gt 0 ]; then
  if [ ! -f "$DIR/cli/owner.key" ]; then
    mkdir -p "$DIR/cli" && chmod 700 "$DIR/cli"
    echo "$DEMO_PW" | "$P" profile register $S --username demo --password-stdin >/dev/null
    echo "$DEMO_PW" | "$P" login $S --username demo --password-stdin >/dev/null
    "$P" key generate --out "$DIR/cli/owner.key" >/dev/null
    "$P" key register --key "$DIR/cli/owner.key" >/dev/null
  else
    echo "$DEMO_PW" | "$P" login $S --username demo --password-stdin >/dev/null
  fi
  for d in $(seq 1 "$DEVICES"); do
    dev=$DIR/devices/s$d
    if [ ! -f "$dev/bundle.json" ]; then
      mkdir -p "$dev" && chmod 700 "$dev"
      "$P" device enroll --role storage --approve --name s$d --key-out "$dev/device.key" --bundle-out "$dev/bundle.json" >/dev/null
    fi
    # The bundle lists every node: a device connects to one at random and
    # fails over to the others.
    "$P" storage-device --config "$dev/bundle.json" --key "$dev/device.key" --dir "$dev/data" \
      >"$DIR/logs/device-s$d.log" 2>&1 &
    PIDS+=($!)
  done
fi

cat <<EOF

privicore cluster is running ($REPLICAS replicas; Ctrl-C stops it).

  replicas   $(for i in $(seq 0 $((REPLICAS - 1))); do printf 'http://127.0.0.1:%d ' $((API_PORT + i)); done)
             (each also serves its WebSocket at /ws)
  database   $DATABASE
  bus        $PLAIN (JetStream, auth callout: the engines)
  devices    $DEVICES storage devices of the profile "demo" (password in $DIR/demo-password)
  state      $DIR (logs in $DIR/logs)

Try it, one replica for the store and another for the read:
  export PRIVICORE_CONFIG_DIR=$DIR/cli
  echo hello > /tmp/hello.txt
  $P put --server http://127.0.0.1:$API_PORT /tmp/hello.txt
  $P get --server http://127.0.0.1:$((API_PORT + 1)) dtk-… -o -
EOF
wait -n "${PIDS[@]}" || true
say "a process of the cluster exited; see $DIR/logs"
