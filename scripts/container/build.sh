#!/usr/bin/env bash
# `make image`: builds docker/Dockerfile with docker when a docker daemon
# answers, else with podman, and reports the image's size and the build time.
#   IMAGE          tag to build (default localhost/seresnext-serve:dev)
#   RUST_IMAGE, RUNTIME_IMAGE
#                  base images; unset means the Dockerfile's public defaults,
#                  `make image-test` passes the local ones
#   TORCH_DEVICE   cuda (default) or cpu (the CPU-only image, no CUDA libraries; see README)
#   CA_BUNDLE      a PEM bundle given to the build as the `ca_bundle` secret;
#                  by default the system bundle when the host has local CAs
#                  (/usr/local/share/ca-certificates), i.e. a TLS-inspecting
#                  network that the build's downloads must trust too.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/container/env.sh

if [ -z "${ENGINE:-}" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=docker
  elif command -v podman >/dev/null; then
    ENGINE=podman
  else
    echo "image: neither a docker daemon nor podman is available" >&2
    exit 1
  fi
fi

args=(build -f docker/Dockerfile -t "$IMAGE" --build-arg "TORCH_DEVICE=${TORCH_DEVICE:-cuda}")
[ -n "${RUST_IMAGE_ARG:-}" ] && args+=(--build-arg "RUST_IMAGE=$RUST_IMAGE_ARG")
[ -n "${RUNTIME_IMAGE_ARG:-}" ] && args+=(--build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE_ARG")
if [ -z "${CA_BUNDLE:-}" ] && compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi
[ -n "${CA_BUNDLE:-}" ] && args+=(--secret "id=ca_bundle,src=$CA_BUNDLE")
if [ "$ENGINE" = podman ]; then
  # The OCI format drops SHELL and HEALTHCHECK; podman does not read
  # docker/Dockerfile.dockerignore by itself.
  args+=(--format docker --ignorefile docker/Dockerfile.dockerignore)
else
  export DOCKER_BUILDKIT=1
fi

echo "image: $ENGINE ${args[*]} ."
started=$SECONDS
"$ENGINE" "${args[@]}" .
elapsed=$((SECONDS - started))
size=$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")
awk -v image="$IMAGE" -v engine="$ENGINE" -v s="$elapsed" -v size="$size" 'BEGIN {
  printf "image: built %s with %s in %d min %02d s; size %.0f bytes (%.2f GB)\n",
    image, engine, s / 60, s % 60, size, size / 1e9 }'
