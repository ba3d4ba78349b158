#!/usr/bin/env bash
# In-process forward throughput, ours against timm eager, side by side in one
# run (the machine is noisy: compare ratios from the same run only).
#   scripts/bench/compare_forward.sh [THREADS] [BATCH_SIZES] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-2}
batches=${2:-1,8}
iterations=${3:-10}
make --no-print-directory build >/dev/null
ours=$(target/release/seresnext-serve bench --device cpu --threads "$threads" \
  --batch-sizes "$batches" --iterations "$iterations")
timm=$("${BENCH_PYTHON:-.venv/bin/python}" scripts/bench/bench_timm.py --threads "$threads" \
  --batch-sizes "$batches" --iterations "$iterations")
echo "$ours"
echo "$timm"
python3 - "$ours" "$timm" <<'PY'
import json, sys
ours = {r["batch_size"]: r for r in map(json.loads, sys.argv[1].splitlines())}
timm = {r["batch_size"]: r for r in map(json.loads, sys.argv[2].splitlines())}
print(f"{'batch':>5} {'ours img/s':>11} {'timm img/s':>11} {'ratio':>6} {'ours p50 ms':>12} {'timm p50 ms':>12}")
for b in sorted(ours):
    o, t = ours[b], timm[b]
    print(f"{b:>5} {o['images_per_second']:>11.2f} {t['images_per_second']:>11.2f} "
          f"{o['images_per_second'] / t['images_per_second']:>6.2f} {o['p50_ms']:>12.1f} {t['p50_ms']:>12.1f}")
PY
