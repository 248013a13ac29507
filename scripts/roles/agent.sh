#!/usr/bin/env bash
# The GPU agent container (gpucost-agent) beside the inference servers of a GPU
# host: settings from a 0600 env file, restarted by Docker, host networking (it
# only connects out, to Kafka on 9092). Where the host has NVIDIA GPUs
# (/dev/nvidia0...), they are passed in: with `--gpus all` where Docker has the
# NVIDIA runtime, else as devices plus the host's NVML library (and nvidia-smi)
# mounted read-only. Without GPUs it runs as configured (GPU_SOURCE=seed: the
# recorded trace). Safe to re-run: the container is replaced only when the
# image, the env file or the GPU arguments changed.
set -euo pipefail

IMAGE="${IMAGE:-gpucost:latest}"
NAME="${NAME:-gpucost-agent}"
WORKDIR="${GPUCOST_WORKDIR:-.}"
ENV_FILE=/etc/gpucost/agent.env
START_TIMEOUT="${START_TIMEOUT:-60}"

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -f "$WORKDIR/agent.env" ]] || die "no agent.env uploaded to $WORKDIR"
grep -q '^KAFKA_BOOTSTRAP=' "$WORKDIR/agent.env" || die "agent.env sets no KAFKA_BOOTSTRAP"
install -D -m 0600 "$WORKDIR/agent.env" "$ENV_FILE"

gpu_args=()
if compgen -G '/dev/nvidia[0-9]*' >/dev/null; then
    if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"nvidia"'; then
        # The NVIDIA container toolkit brings devices and driver libraries itself;
        # NVML needs only the "utility" capability.
        gpu_args=(--gpus all --env NVIDIA_DRIVER_CAPABILITIES=utility)
    else
        for dev in /dev/nvidia*; do
            [[ -c "$dev" ]] && gpu_args+=(--device "$dev")
        done
        nvml="$(ldconfig -p | awk '/libnvidia-ml\.so\.1 .*x86-64|libnvidia-ml\.so\.1 .*AArch64/ {print $NF; exit}')"
        if [[ -n "$nvml" ]]; then
            gpu_args+=(-v "$(readlink -f "$nvml"):/usr/lib/libnvidia-ml.so.1:ro")
        else
            log "warning: GPUs present but no libnvidia-ml.so.1 on the host: NVML will not load"
        fi
        if smi="$(command -v nvidia-smi)"; then
            gpu_args+=(-v "$smi:/usr/bin/nvidia-smi:ro")
        fi
    fi
    log "GPUs found: passing ${gpu_args[*]}"
else
    log "no /dev/nvidia* on this host: the agent reads what GPU_SOURCE says (seed: the recorded trace)"
fi

# The node name in every sample must be the one the host's token events carry.
node_args=()
grep -q '^NODE=' "$ENV_FILE" || node_args=(--env "NODE=$(hostname)")

want="$(docker image inspect -f '{{.Id}}' "$IMAGE")/$(
    { cat "$ENV_FILE"; printf '%s\n' "${gpu_args[@]}" "${node_args[@]}"; } | sha256sum | cut -c1-16
)"
have="$(docker inspect -f '{{.Image}}/{{index .Config.Labels "gpucost.env"}}' "$NAME" 2>/dev/null || true)"
running="$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null || true)"
if [[ "$have" != "$want" ]]; then
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker run -d --name "$NAME" --restart unless-stopped --network host \
        --env-file "$ENV_FILE" "${node_args[@]}" "${gpu_args[@]}" \
        --label "gpucost.env=${want#*/}" \
        --stop-timeout 30 \
        --log-opt max-size=20m --log-opt max-file=3 \
        "$IMAGE" gpucost-agent >/dev/null
    log "started $NAME"
elif [[ "$running" != true ]]; then
    docker start "$NAME" >/dev/null
fi

# Started means: the GPU source opened and the samples topic was found (or Kafka is
# not reachable yet, which the agent rides out by buffering).
deadline=$((SECONDS + START_TIMEOUT))
until docker logs "$NAME" 2>&1 | grep '"msg": "agent started"' >/dev/null; do
    if [[ "$(docker inspect -f '{{.State.Running}}' "$NAME")" != true ]] || ((SECONDS > deadline)); then
        docker logs --tail 30 "$NAME" >&2 || true
        die "$NAME did not start"
    fi
    sleep 1
done
log "$NAME is sampling: $(docker logs "$NAME" 2>&1 | grep -o '"msg": "gpu source chosen", "source": "[a-z]*"' | tail -1)"
