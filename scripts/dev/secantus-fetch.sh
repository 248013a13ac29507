#!/usr/bin/env bash
# Build SecantusDB's Rust server (`secantusd-rs`, crate secantus-mdb) into a cache dir.
#
# SecantusDB ships two servers of one MongoDB wire protocol over WiredTiger: the Python
# one on PyPI (`secantusd-py`, in the venv) and this Rust one on crates.io. Measured here
# with PyMongo's async client, the Rust server takes 8x the inserts and 14x the
# pipeline updates of the Python one (docs/benchmarks.md), which is what lets the
# pipeline run at the rates the reliability and benchmark work asks for on 2 cores.
#
# Usage: scripts/dev/secantus-fetch.sh     prints the path of the secantusd-rs binary
# Safe to re-run: a complete build (marker file present) is not built again. A cold
# build takes about 6 minutes on 2 cores.
set -euo pipefail

SECANTUS_VERSION="${SECANTUS_VERSION:-0.5.3-beta.196}"
GPUCOST_CACHE="${GPUCOST_CACHE:-$HOME/.cache/gpucost}"
SECANTUS_HOME="${SECANTUS_HOME:-$GPUCOST_CACHE/secantus-mdb-$SECANTUS_VERSION}"
CARGO="${CARGO:-cargo}"

binary="$SECANTUS_HOME/bin/secantusd-rs"
# Written last: its presence means the binary is complete.
marker="$SECANTUS_HOME/.built"

log() { printf 'secantus-fetch: %s\n' "$*" >&2; }

main() {
    if [[ -f "$marker" && -x "$binary" ]]; then
        log "secantusd-rs $SECANTUS_VERSION already in $SECANTUS_HOME"
        printf '%s\n' "$binary"
        return 0
    fi
    if ! command -v "$CARGO" >/dev/null; then
        [[ -x "$HOME/.cargo/bin/cargo" ]] && CARGO="$HOME/.cargo/bin/cargo"
    fi
    command -v "$CARGO" >/dev/null || {
        log "error: '$CARGO' not found; run scripts/dev/prereqs.sh (as root it installs Debian's cargo-web), or run the Python server with GPUCOST_MONGO_SERVER=py"
        exit 1
    }

    mkdir -p "$GPUCOST_CACHE"
    local work
    work="$(mktemp -d "$GPUCOST_CACHE/.secantus-build.XXXXXX")"
    # shellcheck disable=SC2064  # expand $work now: it is local to main.
    trap "rm -rf '$work'" EXIT

    log "building secantusd-rs $SECANTUS_VERSION with cargo (about 6 min on 2 cores, once)"
    # --locked: the crate's own Cargo.lock, so every machine builds the same tree.
    # --ignore-rust-version: the crate asks for a newer rustc than its code needs;
    # the build and the whole test suite pass with rustc 1.95.
    # stdout is this script's answer (the binary's path), so cargo talks on stderr.
    CARGO_TARGET_DIR="$work/target" "$CARGO" install --quiet --locked --ignore-rust-version \
        --root "$work/root" --version "$SECANTUS_VERSION" secantus-mdb >&2
    [[ -x "$work/root/bin/secantusd-rs" ]] || { log "error: no secantusd-rs after the build"; exit 1; }

    # Replace, never merge: a half-written bin/ from an interrupted run must not survive.
    rm -rf "$marker" "${SECANTUS_HOME:?}/bin"
    mkdir -p "$SECANTUS_HOME"
    mv "$work/root/bin" "$SECANTUS_HOME/bin"
    printf 'version=%s\n' "$SECANTUS_VERSION" >"$marker"
    log "built $binary"
    printf '%s\n' "$binary"
}

main "$@"
