#!/usr/bin/env bash
# Writes the GPU bundle (`make gpu-bundle`): everything scripts/gpu/verify.sh
# needs on a GPU machine that has python3, torch, timm and safetensors but no
# cargo and no network, in one folder of at most 60 MiB:
#
#   bin/seresnext-serve, bin/loadgen   release builds, debug info stripped
#                                      (symbols kept: a panic still names its
#                                      function); they take libtorch from the
#                                      machine's torch wheel (LD_LIBRARY_PATH,
#                                      set by verify.sh)
#   scripts/gpu/                       verify.sh, verify.py, make_weights.py
#   scripts/bench/bench_timm.py        the timm reference
#   scripts/bench/timing.py            its timing loop (shared with bench_onnxruntime.py)
#   scripts/bench/record.py            JSON-lines helpers verify.py shares
#   scripts/fixtures/calibration.py    the weight calibration make_weights.py shares
#   photos/                            the fixture photos (target/fixtures/photos)
#   BUNDLE.json, README.txt            what was built from which commit
#
# No weights: the GPU machine makes them with its own timm.
# Usage: scripts/gpu/make-bundle.sh [OUT_DIR]   (default target/gpu-bundle)
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:-target/gpu-bundle}
release=${CARGO_TARGET_DIR:-target}/release
photos=${SERESNEXT_FIXTURES:-target/fixtures}/photos
limit_mib=60

for need in "$release/seresnext-serve" "$release/examples/loadgen" "$photos"; do
  [ -e "$need" ] || { echo "make-bundle: $need is missing; run 'make gpu-bundle'" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out/bin" "$out/scripts/gpu" "$out/scripts/bench" "$out/scripts/fixtures" "$out/photos"

strip --strip-debug -o "$out/bin/seresnext-serve" "$release/seresnext-serve"
strip --strip-debug -o "$out/bin/loadgen" "$release/examples/loadgen"
cp scripts/gpu/verify.sh scripts/gpu/verify.py scripts/gpu/make_weights.py "$out/scripts/gpu/"
cp scripts/bench/bench_timm.py scripts/bench/timing.py scripts/bench/record.py "$out/scripts/bench/"
cp scripts/fixtures/calibration.py "$out/scripts/fixtures/"
# The photos of the fixture manifest (JPEG and PNG; the HTTP load uses the
# JPEGs), not their float reference tensors.
find "$photos" -maxdepth 1 -type f \( -name '*.jpg' -o -name '*.png' \) -exec cp {} "$out/photos/" \;

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit+="-dirty"; fi
torch_version=$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "${LIBTORCH:-.venv/lib/python3/site-packages/torch}/version.py" 2>/dev/null || true)
cat > "$out/BUNDLE.json" <<JSON
{
  "version": "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)",
  "commit": "$commit",
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "built_against_torch": "${torch_version:-unknown}",
  "rustc": "$(rustc --version 2>/dev/null || echo unknown)"
}
JSON
cat > "$out/README.txt" <<'TXT'
seresnext-serve GPU bundle (made by `make gpu-bundle`; see README.md, "GPU check").

On the GPU machine (python3 with torch 2.11 + CUDA, timm, safetensors):

    cd gpu-bundle && OUT=/tmp/gpu-out scripts/gpu/verify.sh

Under 8 minutes; writes $OUT/report.md and $OUT/report.json; exit 0 when
every check passed. The settings are at the top of scripts/gpu/verify.sh.
Without a GPU: DEVICE=cpu scripts/gpu/verify.sh (the rehearsal).
TXT

size_kib=$(du -sk "$out" | cut -f1)
du -sh "$out"/*
du -sh "$out"
if ((size_kib > limit_mib * 1024)); then
  echo "make-bundle: $out is $((size_kib / 1024)) MiB, over the ${limit_mib} MiB limit" >&2
  exit 1
fi
echo "make-bundle: $out is $((size_kib / 1024)) MiB (limit ${limit_mib} MiB)"
