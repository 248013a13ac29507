#!/usr/bin/env bash
# The real services that tests and the local demo run against, all on loopback:
# ZooKeeper, one Apache Kafka broker (ZooKeeper mode) and SecantusDB, a
# MongoDB-wire server, with SCRAM users. SecantusDB runs its Rust server
# (`secantusd-rs`, built once by secantus-fetch.sh) unless GPUCOST_MONGO_SERVER=py
# picks the Python one from the venv.
#
# Usage: scripts/dev/services.sh start|stop|status|env
#   start   start what is not running, then wait until every service answers
#   stop    stop the broker, then ZooKeeper, then SecantusDB
#   status  say what runs; exit status 3 when something is down
#   env     print `export` lines for eval "$(scripts/dev/services.sh env)"
#           (passwords are masked when stdout is a terminal)
#
# All state lives in $GPUCOST_SERVICES_DIR (default .services/ in the repo root);
# `.services/env` holds KAFKA_BOOTSTRAP, ZOOKEEPER_CONNECT, MONGODB_URI and
# MONGODB_ADMIN_URI. Safe to re-run: `start` on running services only verifies.
set -euo pipefail

# Settings. Variables are GPUCOST_-prefixed because Docker links and Kubernetes
# export names like KAFKA_PORT and MONGO_PORT into containers.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES_DIR="${GPUCOST_SERVICES_DIR:-$REPO_ROOT/.services}"
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
MONGO_SERVER="${GPUCOST_MONGO_SERVER:-rust}"
SECANTUSD="${SECANTUSD:-}"
SECANTUS_FETCH="${SECANTUS_FETCH:-$REPO_ROOT/scripts/dev/secantus-fetch.sh}"
KAFKA_FETCH="${KAFKA_FETCH:-$REPO_ROOT/scripts/dev/kafka-fetch.sh}"
JAVA="${JAVA:-java}"
ZK_PORT="${GPUCOST_ZK_PORT:-2181}"
KAFKA_PORT="${GPUCOST_KAFKA_PORT:-9092}"
MONGO_PORT="${GPUCOST_MONGO_PORT:-27017}"
ZK_JAVA_OPTS="${GPUCOST_ZK_JAVA_OPTS:--Xms32m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
KAFKA_JAVA_OPTS="${GPUCOST_KAFKA_JAVA_OPTS:--Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20}"
MONGO_CACHE_SIZE="${GPUCOST_MONGO_CACHE_SIZE:-256M}"
START_TIMEOUT="${GPUCOST_START_TIMEOUT:-90}"
STOP_TIMEOUT="${GPUCOST_STOP_TIMEOUT:-30}"
# Loopback only, on purpose: ZooKeeper and the broker take unauthenticated
# clients, so nothing may reach them from another machine.
readonly HOST=127.0.0.1
readonly MONGO_DB=gpucost MONGO_USER=gpucost MONGO_ADMIN_USER=admin

ZK_DIR="$SERVICES_DIR/zookeeper"
KAFKA_DIR="$SERVICES_DIR/kafka"
MONGO_DIR="$SERVICES_DIR/mongo"
ENV_FILE="$SERVICES_DIR/env"
CREDENTIALS="$MONGO_DIR/credentials"
# Written once the users exist in the data dir; without it the data dir is a
# bootstrap that did not finish. It names the server that made the data dir:
# the two servers do not share a storage layout.
PROVISIONED="$MONGO_DIR/.provisioned"

umask 077

log() { printf 'services: %s\n' "$*" >&2; }

# Print the message and the last lines of the service's logs, then exit 1.
fail() {
    local name="$1" msg="$2" f
    log "error: $name: $msg"
    for f in "$SERVICES_DIR/$name/$name.log" "$SERVICES_DIR/$name/$name.out"; do
        [[ -s "$f" ]] || continue
        printf '%s\n' "--- last lines of $f" >&2
        # Cut: ZooKeeper's client logs the whole classpath on one line.
        tail -n 25 "$f" | cut -c 1-400 >&2
    done
    exit 1
}

service_port() {
    case "$1" in
        zookeeper) printf '%s' "$ZK_PORT" ;;
        kafka) printf '%s' "$KAFKA_PORT" ;;
        mongo) printf '%s' "$MONGO_PORT" ;;
    esac
}

pidfile() { printf '%s/%s/%s.pid' "$SERVICES_DIR" "$1" "$1"; }

# A string only this checkout's instance of the service has on its command
# line, so a recycled pid or another checkout's service is not taken for ours.
identity() {
    case "$1" in
        zookeeper) printf '%s' "$ZK_DIR/zoo.cfg" ;;
        kafka) printf '%s' "$KAFKA_DIR/server.properties" ;;
        mongo) printf '%s' "$MONGO_DIR/data" ;;
    esac
}

service_pid() {
    local file pid cmdline
    file="$(pidfile "$1")"
    [[ -f "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # A zombie or a recycled pid has an empty or foreign command line.
    cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
    [[ "$cmdline" == *"$(identity "$1")"* ]] || return 1
    printf '%s' "$pid"
}

is_running() { service_pid "$1" >/dev/null; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Check before change: refuse to start anything when a port that one of our
# stopped services needs is taken, or when the running SecantusDB lost its
# credentials file.
preflight() {
    local name port
    for name in zookeeper kafka mongo; do
        is_running "$name" && continue
        port="$(service_port "$name")"
        if port_open "$port"; then
            log "error: $name: port $HOST:$port is taken by a process this script did not start"
            log "hint: stop that process, or choose another port with GPUCOST_*_PORT"
            exit 1
        fi
    done
    if is_running mongo && [[ ! -f "$CREDENTIALS" ]]; then
        log "error: mongo: running, but $CREDENTIALS is gone"
        log "hint: $0 stop && $0 start (creates new users and an empty database)"
        exit 1
    fi
}

# Start a daemon detached from this shell: its own session (Ctrl-C in the
# caller's terminal does not reach it), stdin closed, output appended to a file,
# and fd 9 (the lock) closed so it does not hold the lock for its whole life.
launch() {
    local name="$1" output="$2" pid tries=0
    shift 2
    setsid "$@" </dev/null >>"$output" 2>&1 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$(pidfile "$name")"
    # Until the child has exec'd, its command line is this script's, and is_running
    # would call a service that is starting "exited" (seen in CI, under load).
    while ! is_running "$name" && kill -0 "$pid" 2>/dev/null && ((tries++ < 100)); do
        sleep 0.05
    done
}

wait_until() {
    local name="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$@"; do
        is_running "$name" || fail "$name" "exited while waiting for $what"
        ((SECONDS < deadline)) || fail "$name" "no $what within ${START_TIMEOUT}s"
        sleep 0.2
    done
}

stop_service() {
    local name="$1" pid deadline
    if ! pid="$(service_pid "$name")"; then
        rm -f "$(pidfile "$name")"
        log "$name: not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while is_running "$name" && ((SECONDS < deadline)); do sleep 0.2; done
    if is_running "$name"; then
        log "$name: still running after ${STOP_TIMEOUT}s, killing"
        kill -KILL "$pid" 2>/dev/null || true
        while is_running "$name"; do sleep 0.1; done
    fi
    rm -f "$(pidfile "$name")"
    log "$name: stopped"
}

# --- ZooKeeper ---------------------------------------------------------------

# ZooKeeper's answer to a four-letter word (whitelisted in zoo.cfg).
zk_say() {
    (exec 3<>"/dev/tcp/$HOST/$ZK_PORT" && printf '%s' "$1" >&3 && timeout 2 cat <&3) 2>/dev/null
}

zk_answers() {
    local reply
    reply="$(zk_say ruok)" || return 1
    [[ "$reply" == imok ]]
}

# Whether ZooKeeper still holds broker 0's registration. A broker killed without a
# clean stop leaves it until its session expires (zookeeper.session.timeout.ms); a
# broker started before then exits at once with NodeExists.
broker_registered() {
    local reply
    reply="$(zk_say dump)" || return 1
    [[ "$reply" == *"/brokers/ids/0"* ]]
}

java_logging() {
    printf '%s\n' "-Dlog4j.configuration=file:$KAFKA_HOME/config/log4j.properties" \
        "-Dgpucost.log.file=$SERVICES_DIR/$1/$1.log"
}

start_zookeeper() {
    is_running zookeeper && return 0
    mkdir -p "$ZK_DIR/data"
    cat >"$ZK_DIR/zoo.cfg" <<EOF
dataDir=$ZK_DIR/data
clientPortAddress=$HOST
clientPort=$ZK_PORT
tickTime=2000
maxClientCnxns=60
4lw.commands.whitelist=ruok,srvr,stat,dump
# The AdminServer is an HTTP server that listens on 0.0.0.0:8080 by default:
# it would expose ZooKeeper beyond loopback and take a port the demo may need.
admin.enableServer=false
EOF
    local -a opts logging
    read -ra opts <<<"$ZK_JAVA_OPTS"
    mapfile -t logging < <(java_logging zookeeper)
    # The JVM's own output (log4j has the logs), fresh for each run so that a
    # failure shows this run's error.
    : >"$ZK_DIR/zookeeper.out"
    launch zookeeper "$ZK_DIR/zookeeper.out" "$JAVA" "${opts[@]}" "${logging[@]}" \
        -Djava.net.preferIPv4Stack=true -cp "$KAFKA_HOME/libs/*" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_DIR/zoo.cfg"
    log "zookeeper: started (pid $(<"$(pidfile zookeeper)"))"
}

# --- Kafka -------------------------------------------------------------------

# Ready means the broker answers metadata and names a controller, so topics can
# be created at once.
kafka_answers() {
    local out
    # kcat waits its whole timeout on a closed port; this answers at once.
    port_open "$KAFKA_PORT" || return 1
    if command -v kcat >/dev/null; then
        out="$(kcat -L -b "$HOST:$KAFKA_PORT" -m 2 2>/dev/null)" || return 1
        [[ "$out" == *"(controller)"* ]]
    else
        "$PYTHON" - "$HOST:$KAFKA_PORT" 2>/dev/null <<'PY'
import sys

from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
md = admin.list_topics(timeout=2)
sys.exit(0 if md.brokers and md.controller_id >= 0 else 1)
PY
    fi
}

start_kafka() {
    is_running kafka && return 0
    mkdir -p "$KAFKA_DIR/data"
    cat >"$KAFKA_DIR/server.properties" <<EOF
broker.id=0
listeners=PLAINTEXT://$HOST:$KAFKA_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
zookeeper.connect=$HOST:$ZK_PORT
# Short, so a broker killed without a clean stop frees its registration soon.
zookeeper.session.timeout.ms=6000
log.dirs=$KAFKA_DIR/data
num.partitions=3
auto.create.topics.enable=false
delete.topic.enable=true
# One broker: every internal topic has one replica.
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Fewer offsets partitions than the default 50: the first consumer group to
# join creates them all, which takes seconds on two cores.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
# Tests join and leave groups constantly; the default 3 s delay would add up.
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
    local -a opts logging
    read -ra opts <<<"$KAFKA_JAVA_OPTS"
    mapfile -t logging < <(java_logging kafka)
    : >"$KAFKA_DIR/kafka.out"
    if broker_registered; then
        log "kafka: waiting for the last broker's ZooKeeper session to expire (it was not stopped cleanly)"
        local deadline=$((SECONDS + START_TIMEOUT))
        while broker_registered; do
            ((SECONDS < deadline)) || fail kafka "broker 0 still registered in ZooKeeper after ${START_TIMEOUT}s"
            sleep 0.5
        done
    fi
    launch kafka "$KAFKA_DIR/kafka.out" "$JAVA" "${opts[@]}" "${logging[@]}" \
        -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true -cp "$KAFKA_HOME/libs/*" \
        kafka.Kafka "$KAFKA_DIR/server.properties"
    log "kafka: started (pid $(<"$(pidfile kafka)"))"
}

# --- SecantusDB --------------------------------------------------------------

# Runs a small Python step with the passwords in its environment, never on a
# command line where `ps` would show them.
mongo_step() {
    local step="$1"
    (
        # shellcheck source=/dev/null
        source "$CREDENTIALS"
        export MONGO_ADMIN_PASS MONGO_APP_PASS
        "$PYTHON" - "$step" "$HOST" "$MONGO_PORT" "$MONGO_DB" "$MONGO_USER" "$MONGO_ADMIN_USER" \
            "$START_TIMEOUT" <<'PY'
import os
import sys
import time

from pymongo import MongoClient
from pymongo.errors import PyMongoError

step, host, port, db, user, admin_user, timeout = sys.argv[1:]
deadline = time.monotonic() + float(timeout)


def client(username=None, password=None, source=None):
    auth = {"username": username, "password": password, "authSource": source} if username else {}
    return MongoClient(host, int(port), serverSelectionTimeoutMS=1000, **auth)


def until_ok(fn):
    while True:
        try:
            return fn()
        except PyMongoError as exc:
            if time.monotonic() > deadline:
                sys.exit(f"services: error: mongo: {type(exc).__name__}: {exc}")
            time.sleep(0.2)


if step == "provision":
    with client() as c:
        until_ok(lambda: c.admin.command("ping"))
        c.admin.command(
            "createUser", admin_user, pwd=os.environ["MONGO_ADMIN_PASS"],
            roles=[{"role": "root", "db": "admin"}],
        )
        c[db].command(
            "createUser", user, pwd=os.environ["MONGO_APP_PASS"],
            roles=[{"role": "readWrite", "db": db}],
        )
elif step == "verify":
    with client(user, os.environ["MONGO_APP_PASS"], db) as c:
        until_ok(lambda: c[db].command("ping"))
PY
    )
}

new_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# The server binary: the Rust one is built on first use (once per cache).
resolve_secantusd() {
    if [[ -n "$SECANTUSD" ]]; then
        [[ -x "$SECANTUSD" ]] || { log "error: SECANTUSD=$SECANTUSD is not executable"; exit 1; }
        return 0
    fi
    case "$MONGO_SERVER" in
        rust) SECANTUSD="$("$SECANTUS_FETCH")" ;;
        py)
            SECANTUSD="$REPO_ROOT/.venv/bin/secantusd-py"
            [[ -x "$SECANTUSD" ]] || { log "error: no secantusd-py at $SECANTUSD (run make venv)"; exit 1; }
            ;;
        *) log "error: GPUCOST_MONGO_SERVER must be rust or py, not '$MONGO_SERVER'"; exit 1 ;;
    esac
}

mongo_launch() {
    local -a auth=()
    [[ "${1:-}" == --auth ]] && auth=(--auth)
    # --config stops secantusd from picking up a stray ./secantusd.toml or
    # ~/.secantus/secantusd.toml; every setting is a flag below.
    printf '# Written by scripts/dev/services.sh: the settings are flags.\n' \
        >"$MONGO_DIR/secantusd.toml"
    # Both servers log to stderr.
    launch mongo "$MONGO_DIR/mongo.log" "$SECANTUSD" --config "$MONGO_DIR/secantusd.toml" \
        --host "$HOST" --port "$MONGO_PORT" --storage-path "$MONGO_DIR/data" \
        --cache-size "$MONGO_CACHE_SIZE" "${auth[@]}"
}

# First start: users are created on a server without --auth, which is then
# restarted with --auth, as on mongod. The open window is on loopback and ends
# before `start` returns.
mongo_provision() {
    if [[ -f "$PROVISIONED" ]]; then
        log "mongo: the data dir was made by another server: replacing it with an empty one"
    else
        log "mongo: no users yet: creating them in an empty data dir"
    fi
    rm -rf "$MONGO_DIR/data" "$PROVISIONED"
    mkdir -p "$MONGO_DIR/data"
    printf 'MONGO_ADMIN_PASS=%s\nMONGO_APP_PASS=%s\n' "$(new_password)" "$(new_password)" \
        >"$CREDENTIALS"
    mongo_launch
    wait_until mongo "port $MONGO_PORT" port_open "$MONGO_PORT"
    mongo_step provision || fail mongo "could not create users"
    stop_service mongo
    printf 'server=%s\n' "$MONGO_SERVER" >"$PROVISIONED"
}

provisioned_by_this_server() {
    [[ -f "$PROVISIONED" && -f "$CREDENTIALS" ]] \
        && [[ "$(sed -n 's/^server=//p' "$PROVISIONED")" == "$MONGO_SERVER" ]]
}

start_mongo() {
    is_running mongo && return 0
    mkdir -p "$MONGO_DIR"
    if ! provisioned_by_this_server; then
        mongo_provision
    fi
    mongo_launch --auth
    log "mongo: started $(basename "$SECANTUSD") (pid $(<"$(pidfile mongo)"))"
}

# --- commands ----------------------------------------------------------------

write_env() {
    # shellcheck source=/dev/null
    source "$CREDENTIALS"
    local base="$HOST:$MONGO_PORT"
    cat >"$ENV_FILE.tmp" <<EOF
KAFKA_BOOTSTRAP=$HOST:$KAFKA_PORT
ZOOKEEPER_CONNECT=$HOST:$ZK_PORT
MONGODB_URI=mongodb://$MONGO_USER:$MONGO_APP_PASS@$base/$MONGO_DB?authSource=$MONGO_DB
MONGODB_ADMIN_URI=mongodb://$MONGO_ADMIN_USER:$MONGO_ADMIN_PASS@$base/admin?authSource=admin
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

cmd_start() {
    local t0=$SECONDS
    [[ -x "$PYTHON" ]] || { log "error: no Python at $PYTHON (run make venv)"; exit 1; }
    resolve_secantusd
    preflight
    KAFKA_HOME="$("$KAFKA_FETCH")"
    # Kafka may start before ZooKeeper answers: it retries the connection, and
    # the two JVMs load their classes side by side.
    start_zookeeper
    start_kafka
    start_mongo
    wait_until zookeeper "answer to ruok on $HOST:$ZK_PORT" zk_answers
    wait_until mongo "port $MONGO_PORT" port_open "$MONGO_PORT"
    mongo_step verify || fail mongo "the $MONGO_USER user cannot authenticate"
    wait_until kafka "metadata with a controller from $HOST:$KAFKA_PORT" kafka_answers
    write_env
    log "ready in $((SECONDS - t0))s: kafka $HOST:$KAFKA_PORT, zookeeper $HOST:$ZK_PORT," \
        "mongo $HOST:$MONGO_PORT; settings in $ENV_FILE"
}

cmd_stop() {
    # The broker first: without ZooKeeper its controlled shutdown hangs.
    stop_service kafka
    stop_service zookeeper
    stop_service mongo
}

cmd_status() {
    local name pid port down=0
    for name in zookeeper kafka mongo; do
        port="$(service_port "$name")"
        if pid="$(service_pid "$name")"; then
            printf '%-10s running on %s:%s (pid %s)\n' "$name" "$HOST" "$port" "$pid"
        else
            printf '%-10s stopped\n' "$name"
            down=1
        fi
    done
    ((down == 0)) || exit 3
}

cmd_env() {
    [[ -f "$ENV_FILE" ]] || { log "error: no $ENV_FILE; run: $0 start"; exit 1; }
    if [[ -t 1 ]]; then
        sed -E 's#^#export #; s#(://[^:]+:)[^@]+@#\1****@#' "$ENV_FILE"
    else
        sed 's#^#export #' "$ENV_FILE"
    fi
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
        start | stop)
            mkdir -p "$SERVICES_DIR"
            # One start or stop at a time: parallel test runs may all call start.
            exec 9>"$SERVICES_DIR/.lock"
            if ! flock -w $((START_TIMEOUT * 2)) 9; then
                log "error: another start or stop holds $SERVICES_DIR/.lock"
                exit 1
            fi
            "cmd_$cmd"
            ;;
        status) cmd_status ;;
        env) cmd_env ;;
        *)
            printf 'usage: %s start|stop|status|env\n' "$0" >&2
            exit 2
            ;;
    esac
}

main "$@"
