#!/usr/bin/env bash
# Measures single mode against cluster mode on this machine, back to back:
# `privicore bench store` and `bench retrieve` through
#   sqlite   one engine on SQLite, embedded NATS (as `privicore serve` runs)
#   pg×1     one replica on PostgreSQL and a one-node NATS (scripts/cluster.sh, REPLICAS=1)
#   pg×3     three replicas on PostgreSQL and a three-node NATS cluster, the clients
#            round-robin over the replicas, each socket joined to the next one
#   pg×3→1   the same three replicas, every client and socket on replica 1 (what
#            the three-replica deployment costs apart from spreading the load
#            over three busy processes on this machine)
# each with three storage devices, and the engines' CPU per operation (their
# CPU time during the run, all replicas together, divided by the operations
# done). The three deployments run side by side; the rounds alternate
# between them, so that the machine's drift hits each alike.
#
#   scripts/cluster-bench.sh [seconds per run, default 6] [rounds, default 3]
#
# Optional environment: CLIENTS (default 64), SIZE (default 1024), SOCKETS
# (default 3: the clients share three sockets, which with three replicas is
# one per replica; every socket of the profile hears every event).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-6}
ROUNDS=${2:-3}
CLIENTS=${CLIENTS:-64}
SOCKETS=${SOCKETS:-3}
SIZE=${SIZE:-1024}
WORK=$(mktemp -d /tmp/privicore-cluster-bench.XXXXXX)
chmod 755 "$WORK" # the PostgreSQL servers run as nobody when we are root
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
TCK=$(getconf CLK_TCK)
P=$WORK/privicore
go build -o "$P" ./cmd/privicore

# cpu PID… prints the processes' CPU time so far, in clock ticks.
cpu() {
  local t=0 f
  for p in "$@"; do
    read -r -a f <"/proc/$p/stat"
    t=$((t + f[13] + f[14]))
  done
  echo "$t"
}

# The SQLite engine, its profile and three devices (as scripts/bench.sh).
S1=$WORK/sqlite && mkdir -p "$S1" && chmod 700 "$S1"
"$P" serve --addr 127.0.0.1:18309 --ws-addr - --bus-addr 127.0.0.1:14522 --data-dir "$S1/data" --log-level warn \
  --auth-register-per-addr -1 >"$S1/serve.out" 2>&1 &
PIDS+=($!)
SQLITE_ENGINE=$!
for _ in $(seq 100); do curl -fs http://127.0.0.1:18309/health >/dev/null 2>&1 && break; sleep 0.1; done
PW='Bench-pass-Tr0ub4dor&3-horse'
(
  export PRIVICORE_CONFIG_DIR=$S1/conf
  echo "$PW" | "$P" profile register --server=http://127.0.0.1:18309 --username demo --password-stdin >/dev/null
  echo "$PW" | "$P" login --server=http://127.0.0.1:18309 --username demo --password-stdin >/dev/null
  "$P" key generate --out "$S1/owner.key" >/dev/null
  "$P" key register --key "$S1/owner.key" >/dev/null
  for i in 1 2 3; do
    "$P" device enroll --role storage --approve --name s$i --key-out "$S1/d$i.key" --bundle-out "$S1/b$i.json" >/dev/null
  done
)
for i in 1 2 3; do
  "$P" storage-device --config "$S1/b$i.json" --key "$S1/d$i.key" --dir "$S1/s$i" >"$S1/dev$i.out" 2>&1 &
  PIDS+=($!)
done

# The two PostgreSQL deployments, each with its own database server.
start_cluster() { # start_cluster NAME REPLICAS API_PORT NATS_PORT PG_PORT
  DIR=$WORK/$1 REPLICAS=$2 API_PORT=$3 NATS_PORT=$4 PG_PORT=$5 scripts/cluster.sh >"$WORK/$1.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1200); do grep -q "is running" "$WORK/$1.out" 2>/dev/null && return 0; sleep 0.1; done
  echo "cluster $1 did not start:" >&2; cat "$WORK/$1.out" >&2; exit 1
}
start_cluster pg1 1 18409 14622 55611
start_cluster pg3 3 18509 14722 55711
sleep 2 # the devices connect

engines() { pgrep -f "$WORK/$1/bin/privicore serve" | tr '\n' ' '; }
servers() { # servers NAME REPLICAS API_PORT
  local out="" i
  for i in $(seq 0 $(($2 - 1))); do out="$out${out:+,}http://127.0.0.1:$(($3 + i))"; done
  echo "$out"
}

# run NAME KIND SERVERS CONFIG_DIR PASSWORD ENGINE_PIDS…: one bench run, one result line.
run() {
  local name=$1 kind=$2 srv=$3 conf=$4 pw=$5
  shift 5
  local before after out ops rate
  before=$(cpu "$@")
  out=$(PRIVICORE_CONFIG_DIR=$conf PRIVICORE_PASSWORD=$pw "$P" bench "$kind" --server "$srv" --username demo \
    --clients "$CLIENTS" --sockets "$SOCKETS" --size "$SIZE" --duration "${SECS}s")
  after=$(cpu "$@")
  ops=$(echo "$out" | sed -n 's/.*ok \([0-9]*\),.*/\1/p')
  rate=$(echo "$out" | sed -n 's/.*, \([0-9]*\)\/s$/\1/p')
  p99=$(echo "$out" | sed -n 's/.*p99 \([^,]*\),.*/\1/p')
  printf '%-8s %-8s %8s/s  p99 %-9s engine CPU %6d µs/op\n' "$name" "$kind" "$rate" "$p99" \
    $(((after - before) * 1000000 / TCK / (ops > 0 ? ops : 1)))
}

echo "$CLIENTS clients on $SOCKETS sockets, $SIZE-byte payloads, ${SECS}s per run, $ROUNDS rounds; $(nproc) cores"
for r in $(seq "$ROUNDS"); do
  echo "== round $r"
  for kind in store retrieve; do
    run sqlite "$kind" http://127.0.0.1:18309 "$S1/conf" "$PW" "$SQLITE_ENGINE"
    # shellcheck disable=SC2046
    run 'pg×1' "$kind" "$(servers pg1 1 18409)" "$WORK/pg1/cli" "$(cat "$WORK/pg1/demo-password")" $(engines pg1)
    # shellcheck disable=SC2046
    run 'pg×3' "$kind" "$(servers pg3 3 18509)" "$WORK/pg3/cli" "$(cat "$WORK/pg3/demo-password")" $(engines pg3)
    # shellcheck disable=SC2046
    run 'pg×3→1' "$kind" "$(servers pg3 1 18509)" "$WORK/pg3/cli" "$(cat "$WORK/pg3/demo-password")" $(engines pg3)
  done
done
