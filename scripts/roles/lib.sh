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

# Add an apt source and keep it only once `apt-get update` accepts it; else
# remove it (a broken source would fail every later apt step, other roles'
# included) and die naming the cause: no packages for this release, or the
# repository unreachable. $3 names the repository in messages, $4 is the advice.
add_apt_source() {
    local name="$1" line="$2" what="$3" advice="${4:-}"
    local file="${APT_SOURCES_DIR:-/etc/apt/sources.list.d}/$name.list" url host out rc=0 cause
    if [[ -f "$file" ]] && [[ "$(<"$file")" == "$line" ]]; then
        return 0 # kept earlier, so accepted earlier
    fi
    printf '%s\n' "$line" >"$file"
    out="$(apt-get -o DPkg::Lock::Timeout=600 update 2>&1)" || rc=$?
    url="$(grep -oE 'https?://[^ ]+' <<<"$line" | head -n1)"
    host="${url#*://}"
    host="${host%%/*}"
    # apt-get update exits 0 when a source cannot be fetched (a warning only).
    out="$(grep -E '^(Err|E:|W:)' <<<"$out" | grep -F "$host" || true)"
    ((rc == 0)) && [[ -z "$out" ]] && return 0
    rm -f "$file"
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
    if grep -qE 'does not have a Release file|404 +Not Found' <<<"$out"; then
        cause="$what publishes no packages for ${PRETTY_NAME:-this release} (${VERSION_CODENAME:-?})"
    elif grep -qiE 'resolv|timed out|unreachable|could not connect|connection failed|unable to connect' <<<"$out"; then
        cause="$what ($host) is unreachable from this host"
    else
        cause="apt-get update rejected $what: $(tail -n1 <<<"${out:-exit $rc}")"
    fi
    die "$cause; removed the source${advice:+; $advice}"
}

# Check the tree in $1 against the sha256sum manifest $2 (paths relative to $1):
# every listed file has its digest, and libs/ and config/ hold nothing unlisted.
# With $3, the manifest's own SHA-256 must be $3 first (the pin). Status 0, or 1
# with one line on stdout naming the first file that differs.
check_manifest() {
    local dir="$1" manifest="$2" pin="${3:-}" listed present file out
    [[ -f "$manifest" ]] || { echo "no manifest $manifest"; return 1; }
    [[ -d "$dir" ]] || { echo "no directory $dir"; return 1; }
    if [[ -n "$pin" && "$(sha256sum "$manifest" | cut -d' ' -f1)" != "$pin" ]]; then
        echo "${manifest##*/} is not the pinned manifest (SHA-256 $pin)"
        return 1
    fi
    manifest="$(realpath "$manifest")"
    listed="$(sed -E 's/^[0-9a-f]{64}  //' "$manifest" | LC_ALL=C sort)"
    present="$(cd "$dir" && { find libs config -type f 2>/dev/null || true; } | LC_ALL=C sort)"
    file="$(LC_ALL=C comm -13 <(echo "$listed") <(echo "$present") | head -n1)"
    [[ -z "$file" ]] || { echo "$file is not in the pinned manifest"; return 1; }
    file="$(LC_ALL=C comm -23 <(echo "$listed") <(echo "$present") | head -n1)"
    [[ -z "$file" ]] || { echo "$file is missing"; return 1; }
    out="$(cd "$dir" && sha256sum --strict -c "$manifest" 2>&1)" && return 0
    file="$(grep -v ': OK$' <<<"$out" | head -n1)"
    echo "${file%: FAILED} does not match the pinned manifest"
    return 1
}
