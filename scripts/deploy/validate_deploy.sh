#!/usr/bin/env bash
# Static checks of docker/ with the tools scripts/deploy/install-deploy-tools.sh
# installs from the package registries. tests/it/deploy_files.rs runs this
# script (so `make test` does); it exits non-zero on the first problem.
# What needs a Docker engine or a cluster (building the image, `compose up`,
# `kubectl apply`) is out of reach here: these are the closest checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=target/deploy-tools
bin=$tools/venv/bin
PATH=$PATH:/usr/sbin

for tool in "$bin/hadolint" "$bin/check-jsonschema" "$bin/kubernetes-validate" \
  "$tools/node/node_modules" "$(command -v promtool || echo promtool)" \
  "$(command -v nginx || echo nginx)" "$(command -v node || echo node)"; do
  if [ ! -e "$tool" ]; then
    echo "validate_deploy: $tool is missing: run scripts/deploy/install-deploy-tools.sh (make test does)" >&2
    exit 1
  fi
done

echo "== hadolint docker/Dockerfile docker/test/*.Containerfile"
"$bin/hadolint" docker/Dockerfile docker/test/*.Containerfile

echo "== Compose Specification schema: docker/compose.yaml"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec docker/compose.yaml docker/compose.test.yaml

# Every Kubernetes object kustomization.yaml applies, plus the adapter rule.
# kustomization.yaml itself is not an API object, and ServiceMonitor is a CRD
# the bundled schemas do not know: it gets its own check below.
k8s=(configmap pvc deployment service pdb hpa prometheus-adapter-rules)
k8s=("${k8s[@]/#/docker/k8s/}")
k8s=("${k8s[@]/%/.yaml}")
# The oldest and the newest Kubernetes the manifests are meant for;
# --strict refuses unknown fields, so a typo cannot pass as "ignored".
for version in 1.29 1.37; do
  echo "== Kubernetes $version schemas (strict)"
  "$bin/kubernetes-validate" --strict --quiet -k "$version" "${k8s[@]}"
done

echo "== prometheus-operator CRD schema: docker/k8s/servicemonitor.yaml"
node scripts/deploy/servicemonitor-check/servicemonitor.mjs "$tools/node/node_modules" \
  docker/k8s/servicemonitor.yaml

echo "== promtool check config docker/prometheus/prometheus.yml"
promtool check config docker/prometheus/prometheus.yml

# nginx -t resolves upstream host names, and seresnext-1/-2 exist only on the
# compose network: test a copy that points them at 127.0.0.1.
echo "== nginx -t docker/nginx/nginx.conf"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed -E 's/server seresnext-[0-9]+:/server 127.0.0.1:/' docker/nginx/nginx.conf > "$scratch/nginx.conf"
nginx -t -q -p "$scratch" -e "$scratch/error.log" -c "$scratch/nginx.conf" -g "pid $scratch/nginx.pid;"

echo "validate_deploy: all checks passed"
