#!/usr/bin/env bash
# Ours on onnxruntime against Python ONNX Runtime (issue 9's target 6), in
# process, many short rounds taking turns (`make engine-ab`; not part of
# `make test` or `make bench`). `make bench` gives each side three passes of
# six batches, and on this noisy machine a neighbour's burst decides the
# ratio; here each side runs ROUNDS times, the first one alternating, so the
# fastest pass of each (noise only ever slows a pass) and the median of the
# rounds' paired ratios both settle.
#   scripts/bench/engine_ab.sh [ROUNDS] [BATCH_SIZE] [ITERATIONS]
# OURS_ARGS adds flags to ours, e.g. OURS_ARGS="--ort-spin true" (Python
# ONNX Runtime spins by default; ours does not, see README).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-10}
batch=${2:-2}
iterations=${3:-6}
bin=${BENCH_BIN:-target/release/seresnext-serve}
python=${BENCH_PYTHON:-.venv/bin/python}
weights=${BENCH_WEIGHTS:-target/fixtures/models/gluon_seresnext50_32x4d.safetensors}
threads=${THREADS:-$(nproc)}
read -r -a ours_args <<< "${OURS_ARGS:-}"
work=target/bench/engine-ab
out=$work/records.jsonl
mkdir -p "$work"
: > "$out"

# Each side's graph is made once, outside the rounds: ours optimized into its
# cache, Python's exported from timm.
"$bin" bench --engine onnxruntime --device cpu --weights "$weights" --threads "$threads" \
  --batch-sizes 1 --warmup 0 --iterations 1 --ort-cache-dir "$work/ort-cache" > /dev/null
"$python" scripts/bench/bench_onnxruntime.py --weights "$weights" --onnx-cache "$work/timm.onnx" \
  --threads "$threads" --batch-sizes 1 --warmup 0 --iterations 1 > /dev/null

ours() {
  "$bin" bench --engine onnxruntime --device cpu --weights "$weights" --threads "$threads" \
    --batch-sizes "$batch" --warmup 2 --iterations "$iterations" --ort-cache-dir "$work/ort-cache" \
    "${ours_args[@]}"
}
python_ort() {
  "$python" scripts/bench/bench_onnxruntime.py --weights "$weights" --onnx-cache "$work/timm.onnx" \
    --threads "$threads" --batch-sizes "$batch" --warmup 2 --iterations "$iterations"
}
tag() { "$python" scripts/bench/record.py tag "$out" side="$1" round="$2" > /dev/null; }

for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  if [ $((round % 2)) = 1 ]; then
    ours | tag ours "$round"; python_ort | tag python "$round"
  else
    python_ort | tag python "$round"; ours | tag ours "$round"
  fi
done

python3 - "$out" "$threads" "$batch" "${OURS_ARGS:-}" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1])]
side = lambda name: {r["round"]: r for r in records if r["side"] == name}  # noqa: E731
ours, python = side("ours"), side("python")
ratios = [ours[k]["images_per_second"] / python[k]["images_per_second"] for k in sorted(ours)]
fastest = {name: min(r["min_ms"] for r in rows.values()) for name, rows in (("ours", ours), ("python", python))}
print(f"seresnext50, batch {sys.argv[3]}, {sys.argv[2]} threads, {len(ratios)} rounds, ours {sys.argv[4] or 'as configured by default'}")
print("round  ours img/s  python img/s  ratio")
for k, ratio in zip(sorted(ours), ratios):
    print(f"{k:>5}  {ours[k]['images_per_second']:>10.2f}  {python[k]['images_per_second']:>12.2f}  {ratio:>5.3f}")
print(f"median of the paired ratios: {statistics.median(ratios):.3f} "
      f"(ours ahead in {sum(r > 1 for r in ratios)} of {len(ratios)})")
print(f"fastest pass: ours {fastest['ours']:.1f} ms, python {fastest['python']:.1f} ms, "
      f"ours ÷ python speed {fastest['python'] / fastest['ours']:.3f}")
PY
