#!/usr/bin/env bash
# Installs the Triton peer of `make bench` into target/bench-tools/triton-venv,
# only when it is missing or what it was made from changed, so a second run
# prints nothing and does nothing.
#
# The venv holds nvidia-pytriton (tritonserver 2.51 inside) and numpy<2, pinned
# in scripts/bench/requirements-triton.txt, and nothing else: torch, timm,
# pillow and safetensors come from .venv through a .pth file that puts .venv's
# site-packages LAST on sys.path, so the venv's numpy 1.26 shadows .venv's
# numpy 2 (torch 2.11 runs with either) and torch's ~5 GB of wheels are not
# installed twice. The venv is made by the interpreter .venv was made from
# (`python3 -m venv` of that one, not .venv/bin/python), so both have the same
# standard library and the same libpython.
#
# A stamp file records the sha256 of the requirements, of this script and the
# .venv path it links to; any change reinstalls from scratch.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/bench-tools/triton-venv
main=.venv
req=scripts/bench/requirements-triton.txt

fail() {
  echo "install-triton: $*" >&2
  exit 1
}

[ -x "$main/bin/python" ] || fail "$main missing; run 'make venv' first"

base=$("$main/bin/python" -c 'import sys; print(sys._base_executable)') ||
  fail "cannot run $main/bin/python"
main_site=$("$main/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

want=$({ sha256sum "$req" scripts/bench/install-triton.sh | cut -d' ' -f1; echo "$base"; echo "$main_site"; } | sha256sum | cut -d' ' -f1)
stamp="$venv/.install-triton.sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi

"$main/bin/python" -c 'import torch, timm, PIL, safetensors' 2>/dev/null ||
  fail "$main lacks torch/timm/pillow/safetensors; run 'make venv' first"

echo "install-triton: $req -> $venv (about 45 s, ~370 MB)"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$base" -m venv "$venv" || fail "'$base -m venv $venv' failed"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" ||
  fail "pip install -r $req failed"

site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# .pth files are read in name order and each line is appended to sys.path:
# "zz-" keeps .venv after the venv's own site-packages and any other .pth.
echo "$main_site" > "$site/zz-main-venv.pth"

# The check the benchmark relies on: numpy 1.x from this venv, torch/timm
# from .venv, and PyTriton's bundled tritonserver present.
"$venv/bin/python" - "$venv" <<'EOF' || fail "the venv does not import what the Triton peer needs (see above)"
import os
import sys

import numpy
import timm  # noqa: F401
import torch

import pytriton
from pytriton.server.triton_server import TritonServer  # noqa: F401

venv = os.path.realpath(sys.argv[1])
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}, wanted 1.x"
assert os.path.realpath(numpy.__file__).startswith(venv), f"numpy from {numpy.__file__}, wanted {venv}"
server = os.path.join(os.path.dirname(pytriton.__file__), "tritonserver", "bin", "tritonserver")
assert os.access(server, os.X_OK), f"{server} missing"
assert torch.from_numpy(numpy.ones(2, dtype=numpy.float32)).sum().item() == 2.0
EOF

echo "$want" > "$stamp"
