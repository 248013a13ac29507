#!/usr/bin/env bash
# The whole pipeline on this machine: broker, database, processor, one producer at
# 50 events/s, then what a token cost. Safe to re-run.
#
# Usage: scripts/dev/demo.sh            (make demo runs it after building the venv)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
RATE="${DEMO_RATE:-50}"
DURATION="${DEMO_DURATION:-60}"
WINDOW_S="${WINDOW_S:-10}"
PRICE_PER_HOUR_USD="${PRICE_PER_HOUR_USD:-3.5}"
HTTP_PORT="${HTTP_PORT:-8080}"
DEMO_DIR="$REPO_ROOT/.services/demo"

log() { printf 'demo: %s\n' "$*" >&2; }

cd "$REPO_ROOT"
umask 077
"$REPO_ROOT/scripts/dev/services.sh" start
# KAFKA_BOOTSTRAP and MONGODB_URI; the file is 0600 and never printed.
set -a
# shellcheck source=/dev/null
. "$REPO_ROOT/.services/env"
set +a
mkdir -p "$DEMO_DIR"

processor_pid=""
stop_processor() {
    if [[ -n "$processor_pid" ]] && kill -0 "$processor_pid" 2>/dev/null; then
        kill -TERM "$processor_pid"
        wait "$processor_pid" || true
    fi
}
trap stop_processor EXIT

log "starting the processor (price \$$PRICE_PER_HOUR_USD/GPU-hour, ${WINDOW_S}s windows, /health on :$HTTP_PORT)"
PRICE_PER_HOUR_USD="$PRICE_PER_HOUR_USD" WINDOW_S="$WINDOW_S" HTTP_PORT="$HTTP_PORT" \
    HTTP_HOST=127.0.0.1 KAFKA_CREATE_TOPICS=true GPU_SOURCE="${GPU_SOURCE:-auto}" \
    "$VENV/bin/gpucost-processor" >"$DEMO_DIR/processor.log" 2>&1 &
processor_pid=$!

for _ in $(seq 1 60); do
    if "$VENV/bin/python" - "$HTTP_PORT" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=1)
PY
    kill -0 "$processor_pid" 2>/dev/null || { tail -n 20 "$DEMO_DIR/processor.log" >&2; exit 1; }
    sleep 1
done
grep -o '"msg": "gpu source chosen"[^}]*' "$DEMO_DIR/processor.log" | head -n 1 >&2 || true

log "producing $RATE events/s for ${DURATION}s"
"$VENV/bin/gpucost-producer" --rate "$RATE" --duration "$DURATION" --mark demo

# The last window is written WINDOW_GRACE_S (1 s) after it ends.
sleep "$(awk -v w="$WINDOW_S" 'BEGIN { print w + 3 }')"
"$VENV/bin/gpucost" report --since "$((DURATION + 2 * ${WINDOW_S%.*}))s"
log "processor log: $DEMO_DIR/processor.log; stop the services with: make services-stop"
