#!/usr/bin/env bash
# SecantusDB, a MongoDB-wire server, as a systemd unit with SCRAM auth: the
# stand-in for MongoDB where MongoDB's repository is out of reach.
#
# Users are created on a loopback-only server without auth, which is then
# replaced by the unit with --auth on BIND_IP, as with mongod.
set -euo pipefail

BIND_IP="${BIND_IP:?set BIND_IP to the private IP}"
MONGO_DB="${MONGO_DB:-gpucost}"
MONGO_USER="${MONGO_USER:-gpucost}"
MONGO_ADMIN_USER="${MONGO_ADMIN_USER:-admin}"
SECANTUSDB_REQUIREMENT="${SECANTUSDB_REQUIREMENT:-secantusdb}"
WORKDIR="${GPUCOST_WORKDIR:-.}"
VENV=/opt/secantusdb
DATA=/var/lib/secantusdb
SECRETS=/etc/gpucost/mongo.secrets
PROVISION_PORT=27018
CACHE_SIZE="${CACHE_SIZE:-256M}"

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

# The stand-in needs no MongoDB source; one left by a failed `mongodb` attempt
# (a release MongoDB does not package) would fail the apt-get update below.
rm -f "${APT_SOURCES_DIR:-/etc/apt/sources.list.d}"/mongodb-org-*.list
apt_install python3-venv python3-pip
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
if ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qi "^$SECANTUSDB_REQUIREMENT$"; then
    "$VENV/bin/pip" install -q "$SECANTUSDB_REQUIREMENT" pymongo
fi
install -D -m 0600 "$WORKDIR/mongo.secrets" "$SECRETS"
ensure_user secantusdb
install -d -o secantusdb -g secantusdb -m 0700 "$DATA" /etc/secantusdb
# --config stops secantusd from reading a stray secantusd.toml; the settings are flags.
printf '# Written by gpucost: the settings are flags of the unit.\n' >/etc/secantusdb/secantusd.toml

secrets_sum="$(sha256sum "$SECRETS" | cut -d' ' -f1)"
if [[ "$(cat "$DATA/.gpucost-users" 2>/dev/null)" != "$secrets_sum" ]]; then
    log "creating users on a loopback-only server without auth"
    systemctl stop secantusdb 2>/dev/null || true
    runuser -u secantusdb -- "$VENV/bin/secantusd-py" --config /etc/secantusdb/secantusd.toml \
        --host 127.0.0.1 --port "$PROVISION_PORT" --storage-path "$DATA" \
        --cache-size "$CACHE_SIZE" &
    server=$!
    (
        set -a
        # shellcheck source=/dev/null
        source "$SECRETS"
        set +a
        "$VENV/bin/python" "$(dirname "$0")/mongo-users.py" 127.0.0.1 "$PROVISION_PORT" \
            "$MONGO_DB" "$MONGO_USER" "$MONGO_ADMIN_USER"
    ) || { kill "$server"; wait "$server" || true; die "could not create users"; }
    kill "$server"
    wait "$server" || true
    printf '%s' "$secrets_sum" >"$DATA/.gpucost-users"
fi

write_if_changed /etc/systemd/system/secantusdb.service 0644 <<EOF_UNIT && changed=1 || changed=0
[Unit]
Description=SecantusDB (MongoDB wire protocol) for gpucost
After=network-online.target
Wants=network-online.target

[Service]
User=secantusdb
Group=secantusdb
ExecStart=$VENV/bin/secantusd-py --config /etc/secantusdb/secantusd.toml --host $BIND_IP --port 27017 --storage-path $DATA --cache-size $CACHE_SIZE --auth
Restart=on-failure
RestartSec=3

[Install]
WantedBy=multi-user.target
EOF_UNIT
systemctl daemon-reload
systemctl enable secantusdb >/dev/null 2>&1
if ((changed)); then systemctl restart secantusdb; else systemctl start secantusdb; fi
wait_port "$BIND_IP" 27017 90
log "SecantusDB (not MongoDB) answers on $BIND_IP:27017 with auth on"
