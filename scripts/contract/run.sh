#!/usr/bin/env bash
# Runs Schemathesis (scripts/contract/requirements.txt) with openapi.yaml
# against a live server; installs it first if needed (install.sh).
#
#   scripts/contract/run.sh BASE_URL [API_KEY]
#
# BASE_URL: e.g. http://127.0.0.1:8080. API_KEY: the server's
# `server.api_key`; given, every request carries `Authorization: Bearer
# API_KEY` (visible to `ps`: use a test key), and the checks also send
# requests without it and expect 401.
# Environment: CONTRACT_SEED (default 42), CONTRACT_MAX_EXAMPLES (test cases
# per operation and phase, default 40), CONTRACT_WORKERS (default 1).
# Every check runs; scripts/contract/schemathesis.toml lists the few
# exceptions and why. Exits non-zero on any failure or error.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 BASE_URL [API_KEY]" >&2
  exit 2
fi
base_url=$1
api_key=${2:-}
seed=${CONTRACT_SEED:-42}
max_examples=${CONTRACT_MAX_EXAMPLES:-40}
# One worker: with two, Hypothesis parses lambdas' source from two threads at
# once, and CPython 3.11's ast module is not thread-safe ("SystemError: AST
# constructor recursion depth mismatch", CPython gh-106905), which failed a CI
# run with no disagreement found.
workers=${CONTRACT_WORKERS:-1}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
"$here/install.sh"

args=(
  --config-file "$here/schemathesis.toml"
  --no-color
  run "$root/openapi.yaml"
  --url "$base_url"
  --seed "$seed"
  --max-examples "$max_examples"
  --workers "$workers"
  # Nothing written into the tree; each run starts from the seed alone.
  --generation-database none
)
# The auth the run claims is the server's: a guarded route answers 200 with
# the key (if any) and 401 without it, or 200 without when there is none.
# Otherwise every generated request could be refused with a documented 401
# and the run would pass without testing anything.
status_of() {
  curl --silent --output /dev/null --write-out '%{http_code}' --max-time 10 "$@" "$base_url/v1/models" || true
}
auth="without an API key"
if [ -n "$api_key" ]; then
  args+=(--header "Authorization: Bearer $api_key")
  auth="with an API key"
  with_key=$(status_of --header "Authorization: Bearer $api_key")
  without_key=$(status_of)
  if [ "$with_key" != 200 ] || [ "$without_key" != 401 ]; then
    echo "contract: FAIL: GET $base_url/v1/models answered $with_key with the key and $without_key without it; expected 200 and 401" >&2
    exit 1
  fi
elif [ "$(status_of)" != 200 ]; then
  echo "contract: FAIL: GET $base_url/v1/models without a key answered $(status_of), expected 200; give the server's API key" >&2
  exit 1
fi

started=$SECONDS
status=0
"$root/.venv-contract/bin/schemathesis" "${args[@]}" || status=$?
elapsed=$((SECONDS - started))
if [ "$status" -eq 0 ]; then
  echo "contract: PASS: openapi.yaml against $base_url $auth (seed $seed, $max_examples examples per operation, ${elapsed}s)"
else
  echo "contract: FAIL (exit $status): openapi.yaml against $base_url $auth (seed $seed, $max_examples examples per operation, ${elapsed}s); see the failures above" >&2
fi
exit "$status"
