#!/usr/bin/env bash
# Build llama.cpp's OpenAI-compatible server (`llama-server`) into a cache dir.
#
# The proxy's integration tests, benchmark and demo need a real inference server.
# llama.cpp is not packaged as a binary for this machine, but its source is vendored
# inside the `llama-cpp-python` source package (vendor/llama.cpp), so pip fetches the
# sdist and cmake + ninja build only the server target from it. The vocab-only GGUF
# files shipped in llama.cpp's models/ dir are kept beside the binary: the tests copy a
# real tokenizer from one into the tiny random-weight model they write.
#
# Usage: scripts/dev/llama-fetch.sh        prints the path of the llama-server binary
# Safe to re-run: a complete build (marker file present) is not built again. A cold
# build takes about 4 minutes on 2 cores (LLAMA_BUILD_JOBS, default 2).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
GPUCOST_CACHE="${GPUCOST_CACHE:-$HOME/.cache/gpucost}"
LLAMA_HOME="${LLAMA_HOME:-$GPUCOST_CACHE/llama-server-$LLAMA_CPP_PYTHON_VERSION}"
LLAMA_BUILD_JOBS="${LLAMA_BUILD_JOBS:-2}"
PYTHON="${PYTHON:-python3}"

binary="$LLAMA_HOME/bin/llama-server"
vocab_dir="$LLAMA_HOME/vocab"
# Written last: its presence means bin/ and vocab/ are complete.
marker="$LLAMA_HOME/.built"

log() { printf 'llama-fetch: %s\n' "$*" >&2; }

main() {
    if [[ -f "$marker" && -x "$binary" ]]; then
        log "llama-server (llama-cpp-python $LLAMA_CPP_PYTHON_VERSION) already in $LLAMA_HOME"
        printf '%s\n' "$binary"
        return 0
    fi
    local tool
    for tool in cmake ninja c++; do
        command -v "$tool" >/dev/null || { log "error: '$tool' not found; install cmake, ninja-build and g++"; exit 1; }
    done

    mkdir -p "$GPUCOST_CACHE"
    local work
    work="$(mktemp -d "$GPUCOST_CACHE/.llama-build.XXXXXX")"
    # shellcheck disable=SC2064  # expand $work now: it is local to main.
    trap "rm -rf '$work'" EXIT

    log "downloading the llama-cpp-python $LLAMA_CPP_PYTHON_VERSION source package"
    # stdout is this script's answer (the binary's path), so pip and cmake talk on stderr.
    "$PYTHON" -m pip download --quiet --no-binary :all: --no-deps \
        --dest "$work/sdist" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" >&2
    local sdist
    sdist="$(find "$work/sdist" -maxdepth 1 -name 'llama_cpp_python-*.tar.gz' | head -n 1)"
    [[ -n "$sdist" ]] || { log "error: no llama_cpp_python source archive downloaded"; exit 1; }
    tar -xzf "$sdist" -C "$work"
    local src
    src="$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    [[ -f "$src/CMakeLists.txt" ]] || { log "error: no vendor/llama.cpp in $sdist"; exit 1; }

    log "building llama-server with cmake + ninja, $LLAMA_BUILD_JOBS jobs (about 4 min on 2 cores, once)"
    # Only the server target; the web UI (LLAMA_BUILD_UI, LLAMA_USE_PREBUILT_UI) would be
    # downloaded at build time, and HTTPS (LLAMA_OPENSSL) is not needed on loopback.
    # Static libraries make one self-contained binary that survives the work dir's removal.
    cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON >&2
    cmake --build "$work/build" --target llama-server -j "$LLAMA_BUILD_JOBS" >&2
    [[ -x "$work/build/bin/llama-server" ]] || { log "error: no llama-server after the build"; exit 1; }

    # Replace, never merge: a half-written bin/ from an interrupted run must not survive.
    rm -rf "$marker" "${LLAMA_HOME:?}/bin" "$vocab_dir"
    mkdir -p "$LLAMA_HOME/bin" "$vocab_dir"
    mv "$work/build/bin/llama-server" "$binary"
    cp "$src"/models/ggml-vocab-*.gguf "$vocab_dir/"
    printf 'llama-cpp-python=%s\n' "$LLAMA_CPP_PYTHON_VERSION" >"$marker"
    log "built $binary"
    printf '%s\n' "$binary"
}

main "$@"
