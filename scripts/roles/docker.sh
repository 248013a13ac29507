#!/usr/bin/env bash
# Docker from the distribution's own packages (no third-party repository).
set -euo pipefail

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

apt_install docker.io
systemctl enable --now docker >/dev/null 2>&1 || systemctl start docker
deadline=$((SECONDS + 60))
until docker info >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "dockerd does not answer"
    sleep 1
done
log "docker $(docker version -f '{{.Server.Version}}')"
