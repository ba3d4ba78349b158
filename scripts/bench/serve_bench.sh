#!/usr/bin/env bash
# Serving figures from one run: in-process forward time, then the HTTP server
# under closed-loop load at concurrency 1 and 16, with the mean batch size
# read from /metrics. Uses the fixture weights (timing does not depend on
# the values) and the fixture photos.
#   scripts/bench/serve_bench.sh [SECONDS] [MAX_BATCH] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
max_batch=${2:-8}
threads=${3:-2}
make --no-print-directory build fixtures >/dev/null
cargo build --release --locked --example loadgen 2>/dev/null
bin=target/release/seresnext-serve
loadgen=target/release/examples/loadgen
weights=target/fixtures/models/gluon_seresnext50_32x4d.safetensors
photos=(target/fixtures/photos/*.jpg target/fixtures/photos/*.png)

echo "# in-process forward, $threads threads"
$bin bench --device cpu --threads "$threads" --weights "$weights" \
  --batch-sizes "1,$max_batch" --iterations 10

config=$(mktemp --suffix .toml)
cat > "$config" <<TOML
[server]
host = "127.0.0.1"
port = 18080
intra_op_threads = $threads
[[models]]
id = "gluon_seresnext50_32x4d"
weights = "$weights"
device = "cpu"
max_batch_size = $max_batch
max_batch_delay_ms = 2
TOML
$bin serve --config "$config" 2>/tmp/serve_bench.log &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$config"' EXIT
for _ in $(seq 600); do
  curl -sf http://127.0.0.1:18080/readyz >/dev/null && break
  sleep 0.2
done
url=http://127.0.0.1:18080/v1/models/gluon_seresnext50_32x4d:predict
batch_stats() {
  curl -s http://127.0.0.1:18080/metrics |
    awk '/^seresnext_batch_size_(sum|count)/ {printf "%s ", $2}'
}
for concurrency in 1 16; do
  before=($(batch_stats))
  echo "# HTTP, concurrency $concurrency, ${seconds}s"
  $loadgen --url "$url" --concurrency "$concurrency" --seconds "$seconds" "${photos[@]}"
  after=($(batch_stats))
  python3 -c "import sys; s=float(sys.argv[3])-float(sys.argv[1]); c=float(sys.argv[4])-float(sys.argv[2]); print(f'mean batch size: {s/c:.2f} ({s:.0f} images in {c:.0f} batches)')" \
    "${before[@]}" "${after[@]}"
done
