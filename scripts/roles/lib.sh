# Shared helpers for the role scripts; each role script sources this file.
# shellcheck shell=bash

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# apt waits for a lock held by unattended-upgrades instead of failing at once.
apt_install() {
    local -a missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
}

# Write a file only when its content differs; exit status 0 when it changed.
write_if_changed() {
    local target="$1" mode="$2" tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    if [[ -f "$target" ]] && cmp -s "$tmp" "$target"; then
        rm -f "$tmp"
        return 1
    fi
    install -D -m "$mode" "$tmp" "$target"
    rm -f "$tmp"
    return 0
}

# Wait until a TCP port accepts connections.
wait_port() {
    local host="$1" port="$2" timeout="${3:-90}" deadline
    deadline=$((SECONDS + timeout))
    until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
        ((SECONDS < deadline)) || die "nothing listens on $host:$port after ${timeout}s"
        sleep 1
    done
}

ensure_user() {
    id -u "$1" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$1"
}
