#!/usr/bin/env bash
# The figures of issue #12 (README Performance, "Hardening"), against one
# engine binary, a fresh engine and data dir per measurement, loopback only:
#
#   scripts/hardening.sh BINARY            # every measurement
#   ONLY="auth ws slow" scripts/hardening.sh BINARY
#
# auth: 100 sequential right logins; 10 000 wrong guesses at one username
#       from 1 and from 50 addresses; 30 wrong change-passwords; 100
#       concurrent registrations from one address (peak RSS).
# ws:   2 000 never-joined WebSockets from one client.
# slow: 200 POSTs trickling a byte every 4 s; 700 idle connections, then
#       /health from another address (the engine limited to 600 files).
# Works against older builds too (to compare with one). SERVE_FLAGS are
# added to serve (e.g. "--auth-register-per-addr -1": hashing bound alone);
# AUTH_MODES replaces the auth measurements (e.g. "-mode register -n 100").
set -euo pipefail
BIN=$(realpath "$1")
ONLY=${ONLY:-auth ws slow}
cd "$(dirname "$0")/.."
TOOLS=$(mktemp -d)
trap 'rm -rf "$TOOLS"' EXIT
for t in authbench wsflood slowclients; do go build -o "$TOOLS/$t" "./scripts/$t"; done
API=127.0.0.1:18731 WS=127.0.0.1:18732 BUS=127.0.0.1:18733

# engine [ulimit -n]: starts BIN on a fresh 0700 data dir; sets PID.
engine() {
  DIR=$(mktemp -d "$TOOLS/data-XXXX")
  ( [ -n "${1:-}" ] && ulimit -n "$1"; exec "$BIN" serve --addr $API --ws-addr $WS --bus-addr $BUS \
      --data-dir "$DIR" --log-level error ${SERVE_FLAGS:-} ) >"$DIR.log" 2>&1 &
  PID=$!
  for _ in $(seq 150); do curl -fs -o /dev/null http://$API/health && return; sleep 0.1; done
  echo "the engine did not start:"; cat "$DIR.log"; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }

if [[ " $ONLY " == *" auth "* ]]; then
  modes=("-mode logins -n 100" "-mode guesses -n 10000 -addrs 1" "-mode guesses -n 10000 -addrs 50"
         "-mode change-password -n 30" "-mode register -n 100")
  [ -n "${AUTH_MODES:-}" ] && modes=("$AUTH_MODES")
  for args in "${modes[@]}"; do
    echo "== auth: $args"
    engine; "$TOOLS/authbench" -server http://$API $args -pid "$PID"; stop
  done
fi
if [[ " $ONLY " == *" ws "* ]]; then
  echo "== ws: 2000 never-joined WebSockets"
  ulimit -n 20000
  engine; "$TOOLS/wsflood" -addr $WS -n 2000 -wait 15s -pid "$PID"; stop
fi
if [[ " $ONLY " == *" slow "* ]]; then
  echo "== slow: 200 POSTs trickling 1 byte every 4 s, counted after 24 s"
  engine 600; "$TOOLS/slowclients" -addr $API -mode trickle -n 200 -every 4s -after 24s; stop
  echo "== slow: 700 idle connections from 127.0.0.1 (600 files), then /health"
  engine 600; "$TOOLS/slowclients" -addr $API -mode idle -n 700; stop
fi
