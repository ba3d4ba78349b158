#!/usr/bin/env bash
# Installs what `make bench` needs beyond the release binary and fixtures,
# each part only when it is missing or its pinned version changed, so a second
# run does nothing:
#   - scripts/bench/requirements-bench.txt (LitServe, matplotlib) into .venv, with a
#     stamp file recording the requirements it installed;
#   - the HTTP load generator oha, from crates.io, into target/bench-tools.
set -euo pipefail
cd "$(dirname "$0")/../.."

OHA_VERSION=1.16.0
tools=target/bench-tools
venv=.venv

if [ ! -x "$venv/bin/python" ]; then
  echo "install-bench-tools: $venv missing; run 'make venv' first" >&2
  exit 1
fi

want=$(sha256sum scripts/bench/requirements-bench.txt | cut -d' ' -f1)
stamp="$venv/.requirements-bench.sha256"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install-bench-tools: scripts/bench/requirements-bench.txt -> $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/bench/requirements-bench.txt
  echo "$want" > "$stamp"
fi

# The benchmark speaks plain http, but oha 1.16 does not compile without a TLS
# backend (--no-default-features alone fails in src/client.rs), so it gets the
# system OpenSSL (native-tls: no C build of aws-lc, as the default rustls
# needs); without OpenSSL's headers, the default features. About 6-8 minutes
# on 2 cores, once; cargo's scratch build folder is removed afterwards.
have=$("$tools/bin/oha" --version 2>/dev/null || true)
if [ "$have" != "oha $OHA_VERSION" ]; then
  features=()
  if pkg-config --exists openssl 2>/dev/null; then
    features=(--no-default-features --features native-tls)
  fi
  echo "install-bench-tools: oha $OHA_VERSION -> $tools (cargo install ${features[*]}, several minutes)"
  mkdir -p "$tools"
  cargo install --quiet --locked --force "${features[@]}" --root "$tools" "oha@$OHA_VERSION"
fi
"$tools/bin/oha" --version >/dev/null
