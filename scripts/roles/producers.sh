#!/usr/bin/env bash
# REPLICAS producer containers of the gpucost image (NAME-1, NAME-2); extra
# ones from an earlier, larger setting are removed.
set -euo pipefail

IMAGE="${IMAGE:-gpucost:latest}"
NAME="${NAME:-gpucost-producer}"
REPLICAS="${REPLICAS:-1}"
WORKDIR="${GPUCOST_WORKDIR:-.}"
ENV_FILE=/etc/gpucost/producer.env

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

install -D -m 0600 "$WORKDIR/producer.env" "$ENV_FILE"
want="$(docker image inspect -f '{{.Id}}' "$IMAGE")/$(sha256sum "$ENV_FILE" | cut -c1-16)"
for ((i = 1; i <= REPLICAS; i++)); do
    name="$NAME-$i"
    have="$(docker inspect -f '{{.Image}}/{{index .Config.Labels "gpucost.env"}}' "$name" 2>/dev/null || true)"
    if [[ "$have" != "$want" ]]; then
        docker rm -f "$name" >/dev/null 2>&1 || true
        docker run -d --name "$name" --restart unless-stopped --network host \
            --env-file "$ENV_FILE" --env "NODE=$(hostname)-$i" --label "gpucost.env=${want#*/}" \
            --log-opt max-size=20m --log-opt max-file=3 \
            "$IMAGE" gpucost-producer >/dev/null
        log "started $name"
    else
        docker start "$name" >/dev/null
    fi
done
for name in $(docker ps -a --format '{{.Names}}' | grep "^$NAME-" || true); do
    ((${name##*-} > REPLICAS)) || continue
    docker rm -f "$name" >/dev/null
    log "removed $name"
done
sleep 3
for ((i = 1; i <= REPLICAS; i++)); do
    [[ "$(docker inspect -f '{{.State.Running}}' "$NAME-$i")" == true ]] \
        || { docker logs --tail 20 "$NAME-$i" >&2; die "$NAME-$i is not running"; }
done
log "$REPLICAS producer(s) running"
