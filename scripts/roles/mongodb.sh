#!/usr/bin/env bash
# MongoDB from MongoDB's own apt repository, auth on, bound to loopback and the
# private IP; an admin (root) and an app user with readWrite on one database.
set -euo pipefail

BIND_IP="${BIND_IP:?set BIND_IP to the private IP}"
MONGO_VERSION="${MONGO_VERSION:-7.0}"
MONGO_DB="${MONGO_DB:-gpucost}"
MONGO_USER="${MONGO_USER:-gpucost}"
MONGO_ADMIN_USER="${MONGO_ADMIN_USER:-admin}"
WORKDIR="${GPUCOST_WORKDIR:-.}"
# ROOT: empty on a VM; a scratch directory in tests.
ROOT="${GPUCOST_ROOT:-}"
SECRETS="$ROOT/etc/gpucost/mongo.secrets"
KEYRING="$ROOT/usr/share/keyrings/mongodb-server-$MONGO_VERSION.gpg"
USERS_VENV="$ROOT/opt/gpucost-mongo-tools"
CONF="$ROOT/etc/mongod.conf"
DATA="$ROOT/var/lib/mongodb"
export APT_SOURCES_DIR="${APT_SOURCES_DIR:-$ROOT/etc/apt/sources.list.d}"

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

# shellcheck source=/dev/null
. "$ROOT/etc/os-release"
case "$ID" in
    ubuntu) repo="https://repo.mongodb.org/apt/ubuntu $VERSION_CODENAME/mongodb-org/$MONGO_VERSION multiverse" ;;
    debian) repo="https://repo.mongodb.org/apt/debian $VERSION_CODENAME/mongodb-org/$MONGO_VERSION main" ;;
    *) die "no MongoDB repository known for $ID" ;;
esac

apt_install ca-certificates curl gnupg python3-venv
if [[ ! -s "$KEYRING" ]]; then
    rm -f "$KEYRING.tmp"
    curl -fsSL "https://www.mongodb.org/static/pgp/server-$MONGO_VERSION.asc" \
        | gpg --dearmor -o "$KEYRING.tmp" \
        || die "cannot fetch MongoDB's signing key for $MONGO_VERSION (www.mongodb.org unreachable?)"
    mv "$KEYRING.tmp" "$KEYRING"
fi
add_apt_source "mongodb-org-$MONGO_VERSION" "deb [signed-by=$KEYRING] $repo" \
    "MongoDB's repository for $MONGO_VERSION" \
    "choose an OS image MongoDB $MONGO_VERSION supports (Ubuntu 22.04), another [mongodb] version, or mongodb.server = \"secantusdb\""
apt_install mongodb-org
install -D -m 0600 "$WORKDIR/mongo.secrets" "$SECRETS"

# mongod's configuration, listening on $1; with $2 = auth, authorization on.
mongod_conf() {
    cat <<EOF_CONF
storage:
  dbPath: /var/lib/mongodb
systemLog:
  destination: file
  path: /var/log/mongodb/mongod.log
  logAppend: true
net:
  port: 27017
  bindIp: $1
EOF_CONF
    if [[ "$2" == auth ]]; then
        printf 'security:\n  authorization: enabled\n'
    fi
}

# The configuration mongod runs with: auth on, loopback and the private IP.
auth_conf() { mongod_conf "127.0.0.1,$BIND_IP" auth; }

# Whatever happens in the window without auth, mongod leaves it with auth on.
restore_auth() {
    auth_conf >"$CONF"
    systemctl restart mongod || true
}

secrets_sum="$(sha256sum "$SECRETS" | cut -d' ' -f1)"
if [[ "$(cat "$DATA/.gpucost-users" 2>/dev/null)" != "$secrets_sum" ]]; then
    # Users are made while mongod listens on loopback only and without auth.
    trap restore_auth EXIT
    mongod_conf 127.0.0.1 no-auth >"$CONF"
    systemctl restart mongod
    [[ -x "$USERS_VENV/bin/python" ]] || python3 -m venv "$USERS_VENV"
    "$USERS_VENV/bin/pip" install -q pymongo
    (
        set -a
        # shellcheck source=/dev/null
        source "$SECRETS"
        set +a
        "$USERS_VENV/bin/python" "$(dirname "$0")/mongo-users.py" 127.0.0.1 27017 \
            "$MONGO_DB" "$MONGO_USER" "$MONGO_ADMIN_USER"
    )
    printf '%s' "$secrets_sum" >"$DATA/.gpucost-users"
    restore_auth
    trap - EXIT
fi
changed=0
auth_conf | write_if_changed "$CONF" 0644 && changed=1
systemctl enable mongod >/dev/null 2>&1
if ((changed)); then systemctl restart mongod; else systemctl start mongod; fi
wait_port "$BIND_IP" 27017 90
log "MongoDB $(mongod --version | sed -n 's/^db version v//p') answers on $BIND_IP:27017 with auth on"
