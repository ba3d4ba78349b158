#!/usr/bin/env bash
# Installs what the deployment checks of `make test` need, each part only
# when it is missing or its pinned list changed, so a second run is quick and
# does nothing:
#   - Debian's prometheus package: `prometheus` for tests/it/prometheus_scrape.rs,
#     `promtool` for linting /metrics and docker/prometheus/prometheus.yml;
#   - Debian's nginx, for `nginx -t` on docker/nginx/nginx.conf and for
#     tests/it/nginx_proxy.rs, which runs that file in front of live upstreams;
#   - the Python validators of scripts/deploy/requirements-deploy.txt;
#   - the npm packages of scripts/deploy/servicemonitor-check (ServiceMonitor schema);
#   - Debian's chromium, the headless browser tests/it/ui.rs drives over the
#     DevTools protocol (the try-it page and /docs).
# The last two go to target/deploy-tools, outside the source tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=target/deploy-tools

apt_packages=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || apt_packages+=(prometheus)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_packages+=(nginx-light)
command -v node >/dev/null && command -v npm >/dev/null || apt_packages+=(nodejs npm)
command -v chromium >/dev/null || [ -n "${SERESNEXT_CHROMIUM:-}" ] || apt_packages+=(chromium)
if [ ${#apt_packages[@]} -gt 0 ]; then
  # The packages' own services are not wanted (tests start their own on free
  # ports); where policy-rc.d forbids starting services, as in containers,
  # none start.
  source scripts/apt-install.sh
  apt_install install-deploy-tools "${apt_packages[@]}"
fi

mkdir -p "$tools"
want=$(sha256sum scripts/deploy/requirements-deploy.txt | cut -d' ' -f1)
stamp="$tools/venv/.requirements.sha256"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install-deploy-tools: Python validators -> $tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
    -r scripts/deploy/requirements-deploy.txt
  echo "$want" > "$stamp"
fi

want=$(cat scripts/deploy/servicemonitor-check/package.json scripts/deploy/servicemonitor-check/package-lock.json \
  | sha256sum | cut -d' ' -f1)
stamp="$tools/node/.package.sha256"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install-deploy-tools: npm packages -> $tools/node"
  rm -rf "$tools/node"
  mkdir -p "$tools/node"
  cp scripts/deploy/servicemonitor-check/package.json scripts/deploy/servicemonitor-check/package-lock.json "$tools/node/"
  # `npm ci` installs exactly the lock file's versions.
  (cd "$tools/node" && npm ci --no-audit --no-fund --silent)
  echo "$want" > "$stamp"
fi
