#!/usr/bin/env bash
# Build the gpucost image on this VM from the wheels uploaded to
# $GPUCOST_WORKDIR/wheels: no registry is needed beyond the base image, and not
# even that when BASE_ARCHIVE (a `docker save` tarball) was uploaded.
set -euo pipefail

IMAGE="${IMAGE:-gpucost:latest}"
BASE_IMAGE="${BASE_IMAGE:-python:3.12-slim}"
BASE_ARCHIVE="${BASE_ARCHIVE:-}"
WORKDIR="${GPUCOST_WORKDIR:-.}"

# shellcheck source=scripts/roles/lib.sh
source "$(dirname "$0")/lib.sh"

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if [[ -n "$BASE_ARCHIVE" ]]; then
        log "loading $BASE_IMAGE from the uploaded $BASE_ARCHIVE"
        docker load -i "$WORKDIR/$BASE_ARCHIVE" >/dev/null
        docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
            || die "$BASE_ARCHIVE does not hold $BASE_IMAGE"
    else
        docker pull -q "$BASE_IMAGE" >/dev/null || die "cannot pull $BASE_IMAGE"
    fi
fi

compgen -G "$WORKDIR/wheels/gpucost-*.whl" >/dev/null || die "no gpucost wheel uploaded"
[[ -f "$WORKDIR/wheels/requirements-runtime.txt" ]] || die "no requirements-runtime.txt uploaded"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp -r "$WORKDIR/wheels" "$context/wheels"
cat >"$context/Dockerfile" <<EOF_DOCKERFILE
FROM $BASE_IMAGE
COPY wheels /tmp/wheels
# --no-index: only the uploaded wheels, so the build needs no package index. The
# runtime's requirements first, then gpucost without its own: the CLI's SSH, AWS and
# PNG packages stay out of the image.
RUN python3 -m pip install --no-cache-dir --no-index --find-links /tmp/wheels \\
        -r /tmp/wheels/requirements-runtime.txt \\
    && python3 -m pip install --no-cache-dir --no-index --no-deps --find-links /tmp/wheels gpucost \\
    && rm -rf /tmp/wheels \\
    && (id -u gpucost >/dev/null 2>&1 || useradd --system --no-create-home gpucost)
USER gpucost
EXPOSE 8080
CMD ["gpucost-processor"]
EOF_DOCKERFILE
log "building $IMAGE FROM $BASE_IMAGE"
docker build -q -t "$IMAGE" "$context" >/dev/null
log "built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c1-19))"
