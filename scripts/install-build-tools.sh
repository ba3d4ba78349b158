#!/usr/bin/env bash
# Installs the tools the Rust build itself needs beyond cargo and gcc, from
# Debian's packages, only when missing:
#   - cmake and nasm: turbojpeg-sys builds the libjpeg-turbo it vendors (the
#     JPEG decoder Pillow bundles, for pixels identical to timm's) with cmake,
#     and its SIMD code with nasm; without nasm it would fall back to plain C,
#     several times slower.
set -euo pipefail
packages=()
command -v cmake >/dev/null || packages+=(cmake)
command -v nasm >/dev/null || packages+=(nasm)
if [ ${#packages[@]} -gt 0 ]; then
  source "$(dirname "$0")/apt-install.sh"
  apt_install install-build-tools "${packages[@]}"
fi
