#!/usr/bin/env bash
# The engine settings, each measured against the default in one run
# (`make engine-settings`; not part of `make test` or `make bench`):
# ONNX Runtime's graph optimization level, spinning, memory arena and thread
# count, and libtorch's memory format and thread count, on seresnext50 with
# the fixture weights, in process (`seresnext-serve bench`). The variants run
# in turn, ROUNDS times over, so each is measured beside the others; the
# table gives each variant's median img/s over the rounds, and its ratio to
# its engine's default.
#   scripts/bench/engine_settings.sh [ROUNDS] [BATCH_SIZES]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
batches=${2:-1,8}
bin=${BENCH_BIN:-target/release/seresnext-serve}
weights=${BENCH_WEIGHTS:-target/fixtures/models/gluon_seresnext50_32x4d.safetensors}
threads=${THREADS:-$(nproc)}
out=target/bench/engine_settings.jsonl
cache=target/bench/engine-settings-ort-cache
mkdir -p "$(dirname "$out")"
: > "$out"
# The cached variant times a start from the cache, so the cache is written first.
rm -rf "$cache"
"$bin" bench --engine onnxruntime --device cpu --weights "$weights" --threads "$threads" \
  --batch-sizes 1 --warmup 0 --iterations 1 --ort-cache-dir "$cache" > /dev/null

# label | engine | threads | flags (the default of each engine first)
variants=(
  "onnxruntime default (all, no spin, arena, $threads threads)|onnxruntime|$threads|"
  "onnxruntime optimization extended|onnxruntime|$threads|--ort-optimization extended"
  "onnxruntime optimization basic|onnxruntime|$threads|--ort-optimization basic"
  "onnxruntime optimization disable|onnxruntime|$threads|--ort-optimization disable"
  "onnxruntime spin on|onnxruntime|$threads|--ort-spin true"
  "onnxruntime arena off|onnxruntime|$threads|--ort-arena false"
  "onnxruntime 1 thread|onnxruntime|1|"
  "onnxruntime graph from the cache|onnxruntime|$threads|--ort-cache-dir $cache"
  "libtorch default (channels_last, $threads threads)|libtorch|$threads|"
  "libtorch NCHW|libtorch|$threads|--channels-last false"
  "libtorch 1 thread|libtorch|1|"
)
for round in $(seq "$rounds"); do
  for variant in "${variants[@]}"; do
    IFS='|' read -r label engine variant_threads flags <<< "$variant"
    echo "round $round: $label" >&2
    # shellcheck disable=SC2086  # flags are words
    "$bin" bench --engine "$engine" --device cpu --weights "$weights" --threads "$variant_threads" \
      --batch-sizes "$batches" --warmup 2 --iterations 6 $flags |
      python3 -c '
import json, sys
for line in sys.stdin:
    record = json.loads(line)
    record["variant"] = sys.argv[1]
    print(json.dumps(record))' "$label" >> "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1])]
batches = sorted({r["batch_size"] for r in records})
variants = list(dict.fromkeys(r["variant"] for r in records))
median = {(v, b): statistics.median(r["images_per_second"] for r in records
                                    if r["variant"] == v and r["batch_size"] == b)
          for v in variants for b in batches}
default = {r["engine"]: r["variant"] for r in reversed(records) if "default" in r["variant"]}
engine_of = {r["variant"]: r["engine"] for r in records}
print("| variant | " + " | ".join(f"batch {b} img/s (÷ default)" for b in batches) + " |")
print("|---|" + "---|" * len(batches))
for v in variants:
    base = default[engine_of[v]]
    cells = [f"{median[v, b]:.2f} ({median[v, b] / median[base, b]:.2f})" for b in batches]
    print(f"| {v} | " + " | ".join(cells) + " |")
PY
