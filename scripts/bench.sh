#!/usr/bin/env bash
# Measures a privicore binary as deployed: a fresh engine, three storage
# device processes enrolled with the CLI, then three runs of each load.
#
#   go build -o /tmp/pc ./cmd/privicore && scripts/bench.sh /tmp/pc [seconds] ["store retrieve ack"]
#
# Runs on this kind of machine spread by ±15 %: compare builds back to back.
#
# Optional environment: RUNS (default "1 2 3": how many runs of each load),
# SERVE_FLAGS (e.g. "--pprof-addr 127.0.0.1:6061"), DEVICE_FLAGS (the first
# device only, e.g. its --pprof-addr), BENCH_FLAGS (e.g. "--cpuprofile F"),
# and with CPU_PER_OP=1 each run also prints the engine's CPU per operation
# (its CPU time during the run divided by the operations done).
set -u
B=${1:?usage: scripts/bench.sh PRIVICORE-BINARY [seconds]}
SECS=${2:-6}
KINDS=${3:-store retrieve ack}
. "$(dirname "$0")/benchdir.sh"
DIR=$(bench_dir)
API=127.0.0.1:18109
BUS=127.0.0.1:14322
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
cd "$DIR"
export PRIVICORE_CONFIG_DIR=$DIR/conf
"$B" serve --addr $API --ws-addr - --bus-addr $BUS --data-dir "$DIR/data" --log-level warn ${SERVE_FLAGS:-} > serve.out 2>&1 &
SERVE_PID=$!
for _ in $(seq 50); do curl -fs http://$API/health >/dev/null 2>&1 && break; sleep 0.1; done
S=--server=http://$API
PW='Bench-pass-Tr0ub4dor&3-horse'
echo "$PW" | "$B" profile register $S --username bench --password-stdin >/dev/null
echo "$PW" | "$B" login $S --username bench --password-stdin >/dev/null
"$B" key generate --out owner.key >/dev/null
"$B" key register --key owner.key >/dev/null
for i in 1 2 3; do
  "$B" device enroll --role storage --approve --name s$i --key-out d$i.key --bundle-out b$i.json >/dev/null
  "$B" storage-device --config b$i.json --key d$i.key --dir s$i $([ $i = 1 ] && echo "${DEVICE_FLAGS:-}") > dev$i.out 2>&1 &
done
sleep 2
export PRIVICORE_PASSWORD="$PW"
for kind in $KINDS; do
  for _ in ${RUNS:-1 2 3}; do
    t0=$(awk '{print $14+$15}' /proc/$SERVE_PID/stat)
    out=$("$B" bench $kind --server http://$API --username bench --duration ${SECS}s --sockets 1 ${BENCH_FLAGS:-})
    t1=$(awk '{print $14+$15}' /proc/$SERVE_PID/stat)
    echo "$out" | sed -n '1,3p'
    n=$(echo "$out" | sed -n 's/.*ok \([0-9]*\),.*/\1/p')
    if [ -n "${CPU_PER_OP:-}" ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
      echo "  engine CPU $(( (t1 - t0) * 10000 / n )) µs per $kind"
    fi
  done
done
