#!/usr/bin/env bash
# Fails unless BINARY's dynamic section matches the image it goes into:
#   scripts/container/check_links.sh BINARY cuda|cpu
# "cuda" needs libtorch_cuda.so (else libtorch never registers its CUDA
# backend and the GPU image reports no GPU); "cpu" needs neither it nor the
# wheel's libtorch.so shim that pulls it in (else the CPU-only image misses a
# library at start). A cached target/ once kept a binary linked the other
# way, so the Dockerfile checks rather than trusts the build.
set -euo pipefail
binary=$1
device=$2
needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
has() { grep -qx "$1" <<< "$needed"; }
case $device in
  cuda)
    has libtorch_cuda.so || {
      echo "check_links: $binary does not need libtorch_cuda.so; a GPU image would see no GPU" >&2
      exit 1
    } ;;
  cpu)
    for library in libtorch_cuda.so libtorch.so; do
      if has "$library"; then
        echo "check_links: $binary needs $library, which the CPU-only image does not carry" >&2
        exit 1
      fi
    done ;;
  *)
    echo "check_links: unknown device '$device' (cuda or cpu)" >&2
    exit 2 ;;
esac
echo "check_links: $binary fits a $device image: $(paste -sd' ' <<< "$needed")"
