# Sourced by the container scripts: one place for the names they share.
# CONTAINERS_CONF is podman's own variable for an extra containers.conf.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/target/container/containers.conf}
# Local base images (scripts/container/setup.sh makes them); the Dockerfile's
# defaults stay the public tags.
RUNTIME_IMAGE=${RUNTIME_IMAGE:-localhost/seresnext-base:bookworm}
RUST_IMAGE=${RUST_IMAGE:-localhost/seresnext-rust:bookworm}
IMAGE=${IMAGE:-localhost/seresnext-serve:dev}
