#!/usr/bin/env bash
# What `pip install gpucost` gives a new user, proven from the built artifacts.
#
# Builds the sdist, and the wheel from that sdist (what an index would serve), and
# checks the wheel built straight from the tree has the same files. Then, in a fresh
# virtual environment with no extras named, in an empty directory with its own HOME:
# `gpucost --help`, `replay <packaged trace> --json` and `--png`, `init` and
# `up --dry-run` (the plan printed, nothing created). Last, the container image's
# slimmer install (the runtime's requirements, gpucost --no-deps): its entry points
# start, and a command that needs a left-out package says so in one line.
# Any traceback or unexpected exit status fails the check.
#
# Usage: scripts/dev/wheel-check.sh        (make wheel-check; make test runs it)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
KEEP="${WHEEL_CHECK_KEEP:-0}"

log() { printf 'wheel-check: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

work="$(mktemp -d)"
cleanup() {
    if [[ "$KEEP" == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# run NAME EXPECTED_STATUS CMD...: run in the empty directory with the fake HOME;
# fail on another exit status or on a traceback; leave the output in $work/NAME.*.
run() {
    local name="$1" want="$2"
    shift 2
    local rc=0
    (cd "$work/cwd" && env HOME="$work/home" CI= "$@") \
        >"$work/$name.out" 2>"$work/$name.err" || rc=$?
    if grep -q "Traceback" "$work/$name.out" "$work/$name.err"; then
        cat "$work/$name.err" >&2
        die "$name: a traceback"
    fi
    if [[ "$rc" != "$want" ]]; then
        tail -n 20 "$work/$name.out" "$work/$name.err" >&2
        die "$name: exit $rc, expected $want"
    fi
    log "ok: $name (exit $rc)"
}

listing() { (cd "$work" && find cwd home | sort); }

is_png() { [[ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]]; }

mkdir -p "$work/cwd" "$work/home" "$work/dist" "$work/direct"

log "building the sdist, and the wheel from it"
"$VENV/bin/python" -m build --outdir "$work/dist" "$REPO_ROOT" >"$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; die "python -m build"; }
"$VENV/bin/python" -m build --wheel --outdir "$work/direct" "$REPO_ROOT" >>"$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; die "python -m build --wheel"; }
sdist="$(compgen -G "$work/dist/gpucost-*.tar.gz")" || die "no sdist"
wheel="$(compgen -G "$work/dist/gpucost-*.whl")" || die "no wheel from the sdist"
direct="$(compgen -G "$work/direct/gpucost-*.whl")" || die "no wheel from the tree"
log "built $(basename "$sdist") and $(basename "$wheel")"
# The sdist must carry everything the wheel ships (the role scripts, the traces).
files() { "$VENV/bin/python" -c 'import sys, zipfile; print("\n".join(sorted(zipfile.ZipFile(sys.argv[1]).namelist())))' "$1"; }
diff <(files "$direct") <(files "$wheel") >&2 \
    || die "the wheel built from the sdist differs from the one built from the tree"

log "installing $(basename "$wheel") into a fresh venv, no extras"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel" \
    || die "pip install $(basename "$wheel")"
gpucost="$work/venv/bin/gpucost"
trace="$("$work/venv/bin/python" -c 'from gpucost.runtime.trace import default_seed_path as p; print(p())')"

run help 0 "$gpucost" --help
grep -q "replay" "$work/help.out" || die "--help lists no replay command"
run replay-json 0 "$gpucost" replay "$trace" --price-per-hour 3.5 --json
"$work/venv/bin/python" -c 'import json, sys; assert json.load(open(sys.argv[1]))["windows"] > 0' \
    "$work/replay-json.out" || die "replay --json printed no windows"
run replay-png 0 "$gpucost" replay "$trace" --price-per-hour 3.5 --png "$work/x.png"
is_png "$work/x.png" || die "replay --png wrote no PNG"
rm "$work/x.png"
run init 0 "$gpucost" init --no-detect-ip --yes --admin-cidr 203.0.113.7/32
before="$(listing)"
run up-dry-run 0 "$gpucost" up --dry-run
grep -q "plan for" "$work/up-dry-run.out" || die "up --dry-run printed no plan"
[[ "$(listing)" == "$before" ]] || die "up --dry-run created files: $(diff <(echo "$before") <(listing))"

log "the image's install: runtime requirements, then gpucost --no-deps"
"$PYTHON" -m venv "$work/slim"
"$work/venv/bin/python" -c 'import sys; from gpucost.remote.deploy import runtime_requirements as r; from pathlib import Path; print("\n".join(r(Path(sys.argv[1]))))' \
    "$wheel" >"$work/requirements-runtime.txt"
"$work/slim/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$work/requirements-runtime.txt" || die "pip install -r requirements-runtime.txt"
"$work/slim/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$wheel" \
    || die "pip install --no-deps $(basename "$wheel")"
run slim-producer-help 0 "$work/slim/bin/gpucost-producer" --help
# The processor is configured by its environment: without a price it says so, exit 2.
run slim-processor-unset 2 "$work/slim/bin/gpucost-processor"
run slim-png 1 "$work/slim/bin/gpucost" replay "$trace" --price-per-hour 3.5 --png "$work/x.png"
grep -q "pip install 'matplotlib" "$work/slim-png.err" || die "no install line for matplotlib"
run slim-aws 1 "$work/slim/bin/gpucost" up --provider aws --dry-run
grep -q "pip install 'boto3" "$work/slim-aws.err" || die "no install line for boto3"
log "all good: the wheel, the sdist's wheel and the image's install"
