#!/usr/bin/env bash
# The processor container: settings from a 0600 env file, restarted by Docker.
#
# Host networking, not `-p 8080:8080`: Docker's published ports are DNAT rules
# that bypass ufw's INPUT chain, so the firewall would not limit 8080 to the
# admin address. With the host's network stack, ufw filters the port.
set -euo pipefail

IMAGE="${IMAGE:-gpucost:latest}"
NAME="${NAME:-gpucost-processor}"
PORT="${PORT:-8080}"
WORKDIR="${GPUCOST_WORKDIR:-.}"
ENV_FILE=/etc/gpucost/processor.env

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

install -D -m 0600 "$WORKDIR/processor.env" "$ENV_FILE"
want="$(docker image inspect -f '{{.Id}}' "$IMAGE")/$(sha256sum "$ENV_FILE" | cut -c1-16)"
have="$(docker inspect -f '{{.Image}}/{{index .Config.Labels "gpucost.env"}}' "$NAME" 2>/dev/null || true)"
running="$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null || true)"
if [[ "$have" != "$want" ]]; then
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker run -d --name "$NAME" --restart unless-stopped --network host \
        --env-file "$ENV_FILE" --label "gpucost.env=${want#*/}" \
        --log-opt max-size=20m --log-opt max-file=3 \
        "$IMAGE" gpucost-processor >/dev/null
    log "started $NAME"
elif [[ "$running" != true ]]; then
    docker start "$NAME" >/dev/null
fi

health() {
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    read -r line <&3 || return 1
    exec 3>&-
    [[ "$line" == *" 200 "* ]]
}
deadline=$((SECONDS + 180))
until health 2>/dev/null; do
    if ((SECONDS > deadline)); then
        docker logs --tail 30 "$NAME" >&2 || true
        die "$NAME does not answer /health with 200 on :$PORT"
    fi
    sleep 2
done
log "$NAME answers /health on :$PORT"
