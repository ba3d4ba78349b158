#!/usr/bin/env bash
# Installs Schemathesis into .venv-contract. Idempotent: a stamp file records
# the requirements it installed, so a second run with unchanged requirements
# does nothing. Its own venv: it keeps Schemathesis's dependencies (requests,
# hypothesis, ...) from ever having to agree with the pins of .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-contract
requirements=scripts/contract/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/schemathesis" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r "$requirements"
echo "$want" > "$stamp"
