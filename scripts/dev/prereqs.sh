#!/usr/bin/env bash
# What this machine needs before `make demo` / `make test`, from Debian 12's own
# packages: checked, and installed when run as root; otherwise one line with the command.
#
# Usage: scripts/dev/prereqs.sh          Python venv, Java 17, Maven, cargo (the services)
#        scripts/dev/prereqs.sh --test   the same, plus sshd, shellcheck, cmake and ninja (the tests)
# Safe to re-run: a machine that has everything is left alone.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
PYTHON_MIN="3.11"
JAVA_MIN=17
# secantus-fetch.sh builds SecantusDB's Rust server with --ignore-rust-version; the
# build and its tests were checked with rustc 1.95. Debian 12's `cargo` (1.65) and
# the `cargo-web` of bookworm main (1.85) are older; bookworm-security's cargo-web is
# 1.96. (rustup's toolchain in ~/.cargo/bin is found as well.)
RUST_MIN="1.95"
# The packages that bring each tool. Rust's build of WiredTiger needs cmake and a C
# toolchain; zlib is found with pkg-config.
APT_JAVA=(openjdk-17-jdk-headless)
APT_MAVEN=(maven)
APT_RUST=(cargo-web cmake build-essential pkg-config zlib1g-dev)
APT_VENV=(python3-venv)
APT_SSHD=(openssh-server)
APT_SHELLCHECK=(shellcheck)
# llama-fetch.sh builds llama.cpp's server for the proxy's tests with cmake and ninja.
APT_LLAMA=(cmake ninja-build build-essential)

log() { printf 'prereqs: %s\n' "$*" >&2; }

# True when version $1 >= $2 (dotted numbers).
at_least() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }

python_ok() {
    local version
    version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
        || return 1
    at_least "$version" "$PYTHON_MIN"
}

venv_ok() {
    # Debian's python3 makes venvs only with python3-venv installed (it holds ensurepip).
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1
}

java_ok() {
    local version
    command -v java >/dev/null || return 1
    # `openjdk version "17.0.15" 2025-04-15`: the major is the first number.
    version="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
    [[ -n "$version" ]] && ((version >= JAVA_MIN))
}

cargo_path() {
    if command -v cargo >/dev/null; then
        command -v cargo
    elif [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        printf '%s\n' "$HOME/.cargo/bin/cargo"
    else
        return 1
    fi
}

cargo_ok() {
    local cargo version
    cargo="$(cargo_path)" || return 1
    # `cargo 1.96.0 (…)`
    version="$("$cargo" --version 2>/dev/null | awk '{print $2}')"
    [[ -n "$version" ]] && at_least "$version" "$RUST_MIN"
}

main() {
    local with_tests=0
    case "${1:-}" in
        --test) with_tests=1 ;;
        "") ;;
        *) log "usage: $0 [--test]"; exit 2 ;;
    esac

    python_ok || {
        log "error: gpucost needs Python >= $PYTHON_MIN as $PYTHON (set PYTHON=… to another)"
        exit 1
    }
    local missing=() what=() tests=""
    venv_ok || { missing+=("${APT_VENV[@]}"); what+=("python venv"); }
    java_ok || { missing+=("${APT_JAVA[@]}"); what+=("Java $JAVA_MIN"); }
    command -v mvn >/dev/null || { missing+=("${APT_MAVEN[@]}"); what+=("Maven"); }
    cargo_ok || { missing+=("${APT_RUST[@]}"); what+=("cargo >= $RUST_MIN"); }
    if ((with_tests)); then
        tests=", sshd, shellcheck, cmake + ninja"
        [[ -x /usr/sbin/sshd ]] || { missing+=("${APT_SSHD[@]}"); what+=("sshd"); }
        command -v shellcheck >/dev/null || { missing+=("${APT_SHELLCHECK[@]}"); what+=("shellcheck"); }
        { command -v cmake && command -v ninja && command -v c++; } >/dev/null \
            || { missing+=("${APT_LLAMA[@]}"); what+=("cmake + ninja (llama-server)"); }
    fi

    if ((${#missing[@]} == 0)); then
        log "all there: Python >= $PYTHON_MIN with venv, Java >= $JAVA_MIN, Maven, cargo >= $RUST_MIN$tests"
        return 0
    fi
    local command="apt-get update && apt-get install -y ${missing[*]}" named
    named="$(printf '%s, ' "${what[@]}")"
    named="${named%, }"
    if ((EUID != 0)); then
        log "missing: $named; as root run: $command"
        exit 1
    fi
    log "missing: $named; installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
    # A Rust that is still too old after the install (bookworm-security not in the
    # sources) is said plainly rather than failing six minutes into the build.
    cargo_ok || {
        log "error: cargo is $("$(cargo_path)" --version 2>/dev/null || echo missing), need >= $RUST_MIN; enable bookworm-security in the apt sources and run: $command"
        exit 1
    }
    java_ok || { log "error: java is still older than $JAVA_MIN (update-alternatives --config java)"; exit 1; }
    log "installed: ${missing[*]}"
}

main "$@"
