#!/usr/bin/env bash
# `make image-test`: sets up podman and the local base images when missing
# (scripts/container/setup.sh), builds the image from them
# (scripts/container/build.sh), then runs scripts/container/image_test.py
# against it: user and libraries, readiness, a predict equal to the host
# binary's, /metrics, the health check, SIGTERM under load, no weights, two
# replicas behind nginx, compose. The host binary is `make build`'s; the
# weights are a random-init fixture checkpoint (`make fixtures`).
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
scripts/container/setup.sh
. scripts/container/env.sh
RUST_IMAGE_ARG=$RUST_IMAGE RUNTIME_IMAGE_ARG=$RUNTIME_IMAGE IMAGE=$IMAGE \
  scripts/container/build.sh
fixtures=${SERESNEXT_FIXTURES:-target/fixtures}
.venv/bin/python scripts/container/image_test.py --image "$IMAGE" \
  --host-bin target/release/seresnext-serve \
  --weights "$fixtures/models/gluon_seresnext50_32x4d_zip.pth" \
  --jpeg "$fixtures/photos/chelsea.jpg" "$@"
echo "image-test: passed in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
