#!/usr/bin/env bash
# Makes this machine able to build and run the service's image with podman,
# with nothing pulled from an image registry (none is reachable here):
#   1. podman (and runc, mmdebstrap, podman-compose) from Debian;
#   2. a containers.conf of the project's, in target/container/, that podman
#      reads through CONTAINERS_CONF: crun refuses this machine's hybrid cgroup
#      layout, so runc; and ulimits no higher than the host's hard limits,
#      because a container may not raise them;
#   3. two local base images made by mmdebstrap from the Debian mirror apt
#      already uses, then `podman import`: a minimal bookworm for the runtime
#      stage, and the same plus Debian's Rust 1.96 (rustc-web/cargo-web from
#      bookworm-security), gcc, g++ and libc6-dev for the build stage.
# Every step checks first and skips what is already there, so a second run
# takes a second. Prints the variables the other container scripts use.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/apt-install.sh
. scripts/apt-install.sh
. scripts/container/env.sh

need=()
for tool in podman:podman runc:runc mmdebstrap:mmdebstrap podman-compose:podman-compose \
  newuidmap:uidmap slirp4netns:slirp4netns \
  /usr/lib/cni/dnsname:golang-github-containernetworking-plugin-dnsname; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt_install container "${need[@]}" containernetworking-plugins fuse-overlayfs catatonit \
    golang-github-containernetworking-plugin-dnsname
fi

if [ ! -s "$CONTAINERS_CONF" ]; then
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] || [ "$nofile" -gt 20000 ] && nofile=20000
  [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
  cat >"$CONTAINERS_CONF" <<CONF
# Written by scripts/container/setup.sh; see there for why.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
[engine]
runtime = "runc"
CONF
  echo "container: wrote $CONTAINERS_CONF"
fi

debian_mirror=http://deb.debian.org/debian
security_mirror=http://deb.debian.org/debian-security
# Each base image is labelled with the packages it was made with, so a
# change to the list below makes it again instead of keeping a stale one.
make_base() {
  local image=$1 packages=$2
  shift 2
  if podman image exists "$image" && [ "$(podman image inspect --format \
    '{{index .Labels "seresnext.packages"}}' "$image")" = "$packages" ]; then
    echo "container: $image present"
    return
  fi
  local tar
  tar=$(mktemp --suffix=.tar)
  local started=$SECONDS
  mmdebstrap --quiet --variant=minbase ${packages:+--include="$packages"} bookworm "$tar" \
    "deb $debian_mirror bookworm main" \
    "deb $debian_mirror bookworm-updates main" \
    "deb $security_mirror bookworm-security main"
  podman import --quiet --change "LABEL seresnext.packages=$packages" "$tar" "$image" >/dev/null
  rm -f "$tar"
  echo "container: made $image in $((SECONDS - started)) s"
}
make_base "$RUNTIME_IMAGE" ""
# g++: tch's torch-sys compiles its C++ shim against libtorch; make: the
# cmake build of the vendored libjpeg-turbo.
make_base "$RUST_IMAGE" rustc-web,cargo-web,gcc,g++,libc6-dev,make,pkg-config

# nginx and Prometheus for the compose test (docker/compose.test.yaml).
for peer in nginx prometheus; do
  image=localhost/seresnext-$peer:bookworm
  if podman image exists "$image"; then
    echo "container: $image present"
  else
    podman build --quiet --format docker --build-arg "BASE_IMAGE=$RUNTIME_IMAGE" \
      -t "$image" -f "docker/test/$peer.Containerfile" docker/test >/dev/null
    echo "container: built $image"
  fi
done
