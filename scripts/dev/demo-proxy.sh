#!/usr/bin/env bash
# Real traffic, priced per tenant: llama-server (a tiny random-weight model), the
# metering proxy in front of it, the processor behind the broker; two tenants send chat
# requests, streamed and not, through the proxy; then the cost per token by tenant.
#
# Usage: scripts/dev/demo-proxy.sh     (make demo-proxy runs it after building the venv)
# The first run builds llama-server (scripts/dev/llama-fetch.sh, minutes, once).
# Uses its own topic and collection prefix, so it never mixes with `make demo`.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
SERVICES_DIR="${GPUCOST_SERVICES_DIR:-$REPO_ROOT/.services}"
REQUESTS="${DEMO_REQUESTS:-6}"
WINDOW_S="${WINDOW_S:-5}"
PRICE_PER_HOUR_USD="${PRICE_PER_HOUR_USD:-3.5}"
DEMO_DIR="$REPO_ROOT/.services/demo-proxy"
TOPIC="demo-proxy.token_usage"
PREFIX="demo_proxy_"

log() { printf 'demo-proxy: %s\n' "$*" >&2; }

free_port() {
    "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_healthy() { # NAME PID URL LOG
    for _ in $(seq 1 120); do
        if "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$3" 2>/dev/null; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || { log "$1 exited:"; tail -n 20 "$4" >&2; exit 1; }
        sleep 0.5
    done
    log "$1 not healthy after 60 s"; tail -n 20 "$4" >&2; exit 1
}

cd "$REPO_ROOT"
umask 077
"$REPO_ROOT/scripts/dev/services.sh" start
# KAFKA_BOOTSTRAP and MONGODB_URI; the file is 0600 and never printed.
set -a
# shellcheck source=/dev/null
. "$SERVICES_DIR/env"
set +a
mkdir -p "$DEMO_DIR"

llama_bin="$("$REPO_ROOT/scripts/dev/llama-fetch.sh")"
model="$("$VENV/bin/python" - "$llama_bin" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from support.llama import cached_model
print(cached_model(Path(sys.argv[1])))
PY
)"

pids=()
stop_all() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT

llama_port="$(free_port)"
log "starting llama-server on :$llama_port (tiny random-weight llama)"
"$llama_bin" --model "$model" --alias tiny-random-llama --host 127.0.0.1 --port "$llama_port" \
    --ctx-size 8192 --parallel 4 --threads 1 --no-webui >"$DEMO_DIR/llama-server.log" 2>&1 &
pids+=($!)
wait_healthy llama-server "${pids[-1]}" "http://127.0.0.1:$llama_port/health" "$DEMO_DIR/llama-server.log"

processor_port="$(free_port)"
log "starting the processor (price \$$PRICE_PER_HOUR_USD/GPU-hour, ${WINDOW_S}s windows)"
PRICE_PER_HOUR_USD="$PRICE_PER_HOUR_USD" WINDOW_S="$WINDOW_S" HTTP_PORT="$processor_port" \
    HTTP_HOST=127.0.0.1 KAFKA_CREATE_TOPICS=true KAFKA_TOPIC="$TOPIC" \
    KAFKA_DLQ_TOPIC="$TOPIC.dlq" KAFKA_GROUP=demo-proxy MONGODB_COLLECTION_PREFIX="$PREFIX" \
    GPU_SOURCE="${GPU_SOURCE:-auto}" \
    "$VENV/bin/gpucost-processor" >"$DEMO_DIR/processor.log" 2>&1 &
pids+=($!)
wait_healthy processor "${pids[-1]}" "http://127.0.0.1:$processor_port/health" "$DEMO_DIR/processor.log"

# Two tenants by API key. The keys file holds secrets: mode 0600 (umask above).
printf '{"sk-demo-team-a": "team-a", "sk-demo-team-b": "team-b"}\n' >"$DEMO_DIR/keys.json"
proxy_port="$(free_port)"
log "starting gpucost-proxy on :$proxy_port in front of llama-server"
PROXY_UPSTREAMS="llama=http://127.0.0.1:$llama_port@$(hostname):0" PROXY_PORT="$proxy_port" \
    KAFKA_TOPIC="$TOPIC" PROXY_TENANT_KEYS_FILE="$DEMO_DIR/keys.json" \
    PROXY_SPOOL_DIR="$DEMO_DIR/spool" \
    "$VENV/bin/gpucost-proxy" >"$DEMO_DIR/proxy.log" 2>&1 &
pids+=($!)
wait_healthy gpucost-proxy "${pids[-1]}" "http://127.0.0.1:$proxy_port/health" "$DEMO_DIR/proxy.log"

log "sending $REQUESTS chat requests per tenant (half streamed) through the proxy"
started="$(date +%s)"
"$VENV/bin/python" - "http://127.0.0.1:$proxy_port" "$REQUESTS" <<'PY'
import sys
import httpx
url, requests = sys.argv[1], int(sys.argv[2])
for tenant, key, tokens in (("team-a", "sk-demo-team-a", 48), ("team-b", "sk-demo-team-b", 12)):
    headers = {"authorization": f"Bearer {key}"}
    for i in range(requests):
        body = {
            "model": "tiny-random-llama",
            "messages": [{"role": "user", "content": f"Request {i} from {tenant}: what does a GPU cost?"}],
            "max_tokens": tokens,
            "stream": i % 2 == 1,
        }
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60) as answer:
            answer.read()
            assert answer.status_code == 200, answer.text
    print(f"  {tenant}: {requests} requests, up to {tokens} tokens each", file=sys.stderr)
PY

# The last window is written WINDOW_GRACE_S (1 s) after it ends.
sleep "$(awk -v w="$WINDOW_S" 'BEGIN { print w + 3 }')"
since="$(( $(date +%s) - started + 2 * ${WINDOW_S%.*} ))s"
MONGODB_COLLECTION_PREFIX="$PREFIX" "$VENV/bin/gpucost" report --by tenant --since "$since"
log "logs: $DEMO_DIR/{llama-server,processor,proxy}.log"
