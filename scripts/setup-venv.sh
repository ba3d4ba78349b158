#!/usr/bin/env bash
# Creates .venv with libtorch (from the PyPI torch wheel) and the fixture
# packages. Idempotent: a stamp file records the requirements it installed, so
# a second run with unchanged requirements does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r scripts/requirements.txt
echo "$want" > "$stamp"
