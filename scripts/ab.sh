#!/usr/bin/env bash
# Compares privicore builds on the store load, back to back: for each run a
# fresh engine and three storage-device processes, `bench store` for SECS,
# then the CPU seconds the engine and the devices used.
#
#   scripts/ab.sh SECS RUNS BINARY-A BINARY-B ...
#
# Runs alternate between the binaries, 15 s apart (the file system settles
# after the previous run's clean-up). Prints stores/s and CPU per store.
set -u
. "$(dirname "$0")/benchdir.sh"
SECS=${1:?usage: scripts/ab.sh SECS RUNS BINARY...}; RUNS=${2:?}; shift 2
one() {
  local B=$1 DIR API=127.0.0.1:18219 BUS=127.0.0.1:14432
  DIR=$(bench_dir)
  (
    trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT
    cd "$DIR"; export PRIVICORE_CONFIG_DIR=$DIR/conf
    "$B" serve --addr $API --ws-addr - --bus-addr $BUS --data-dir "$DIR/data" --log-level warn >serve.out 2>&1 & SP=$!
    for _ in $(seq 50); do curl -fs http://$API/health >/dev/null 2>&1 && break; sleep 0.1; done
    S=--server=http://$API; PW='Bench-pass-Tr0ub4dor&3-horse'
    echo "$PW" | "$B" profile register $S --username bench --password-stdin >/dev/null
    echo "$PW" | "$B" login $S --username bench --password-stdin >/dev/null
    "$B" key generate --out owner.key >/dev/null; "$B" key register --key owner.key >/dev/null
    DP=""
    for i in 1 2 3; do
      "$B" device enroll --role storage --approve --name s$i --key-out d$i.key --bundle-out b$i.json >/dev/null
      "$B" storage-device --config b$i.json --key d$i.key --dir s$i >dev$i.out 2>&1 & DP="$DP $!"
    done
    sleep 2
    cpu() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
    e0=$(cpu $SP); d0=$(cpu $DP)
    out=$(PRIVICORE_PASSWORD="$PW" "$B" bench store --server http://$API --username bench --duration ${SECS}s --sockets 1)
    e1=$(cpu $SP); d1=$(cpu $DP)
    ok=$(echo "$out" | sed -n 's/.*ok \([0-9]*\),.*/\1/p'); tps=$(echo "$out" | sed -n 's/.*, \([0-9]*\)\/s$/\1/p')
    awk -v b="$B" -v ok="$ok" -v tps="$tps" -v e=$((e1-e0)) -v d=$((d1-d0)) 'BEGIN {
      printf "%s  %s stores/s  engine %.0f µs/store  devices %.0f µs/store\n", b, tps, e*10000/ok, d*10000/ok }'
  )
  rm -rf "$DIR"
}
for _ in $(seq "$RUNS"); do
  for b in "$@"; do sleep 15; one "$b"; done
done
