#!/usr/bin/env bash
# First step on every host: a fresh cloud VM accepts SSH before cloud-init and
# the first unattended-upgrades run are done; apt steps started then would fail
# on the dpkg lock or race cloud-init's own package installs.
set -euo pipefail

BOOT_TIMEOUT="${BOOT_TIMEOUT:-900}"
DPKG_LOCK=/var/lib/dpkg/lock-frontend

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

if command -v cloud-init >/dev/null; then
    log "waiting for cloud-init"
    rc=0
    timeout "$BOOT_TIMEOUT" cloud-init status --wait >/dev/null || rc=$?
    # 2: finished with recoverable errors ("degraded"); the VM is usable.
    ((rc == 0 || rc == 2)) || die "cloud-init status --wait exited $rc"
fi

# dpkg takes fcntl locks, which flock(1) cannot see: ask with lockf.
dpkg_free() {
    [[ -e "$DPKG_LOCK" ]] || return 0
    python3 - "$DPKG_LOCK" <<'PY'
import fcntl, sys
with open(sys.argv[1], "w") as handle:
    fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
PY
}

deadline=$((SECONDS + BOOT_TIMEOUT))
until dpkg_free 2>/dev/null; do
    ((SECONDS < deadline)) || die "dpkg is still locked after ${BOOT_TIMEOUT}s"
    log "waiting for the dpkg lock"
    sleep 3
done
log "boot finished"
