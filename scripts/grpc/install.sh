#!/usr/bin/env bash
# Installs tritonclient[grpc] into .venv-grpc. Idempotent: a stamp file records
# the requirements it installed, so a second run with unchanged requirements
# does nothing. Its own venv: it keeps grpcio and protobuf
# from ever having to agree with the pins of .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-grpc
requirements=scripts/grpc/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r "$requirements"
echo "$want" > "$stamp"
