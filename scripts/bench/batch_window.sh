#!/usr/bin/env bash
# The batch-window study of BENCHMARKS.md: our server (gluon_seresnext50_32x4d
# alone, CPU) restarted once per window setting, each under the same oha
# closed-loop levels; appends `kind=window` records to RECORDS. Called by
# scripts/bench/run.sh; settings (all optional):
#   BENCH_WINDOW_VARIANTS     "<batch_window>:<max_batch_delay_ms> ..."
#                             ("fixed:0 fixed:2 fixed:5 adaptive:2 adaptive:5")
#   BENCH_WINDOW_CONCURRENCY  levels ("1 4 16")
#   BENCH_WINDOW_SECONDS      seconds per level (10)
#   THREADS, BENCH_MAX_BATCH, BENCH_PHOTO as in run.sh
#   scripts/bench/batch_window.sh RECORDS
set -euo pipefail
cd "$(dirname "$0")/../.."
records=$1
threads=${THREADS:-$(nproc)}
seconds=${BENCH_WINDOW_SECONDS:-10}
read -r -a levels <<< "${BENCH_WINDOW_CONCURRENCY:-1 4 16}"
read -r -a variants <<< "${BENCH_WINDOW_VARIANTS:-fixed:0 fixed:2 fixed:5 adaptive:2 adaptive:5}"
max_batch=${BENCH_MAX_BATCH:-8}
photo=${BENCH_PHOTO:-target/fixtures/photos/chelsea.jpg}
python=${BENCH_PYTHON:-.venv/bin/python}  # run.sh passes its choice
bin=target/release/seresnext-serve
oha=target/bench-tools/bin/oha
model=gluon_seresnext50_32x4d
weights=target/fixtures/models/$model.safetensors
work=target/bench/window
mkdir -p "$work"

server=
stop_server() {
  [ -n "$server" ] || return 0
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}
trap stop_server EXIT

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
url=$base/v1/models/$model:predict
batch_stats() {
  curl -sf "$base/metrics" > "$work/metrics.txt"
  "$python" scripts/bench/record.py batch-stats "$work/metrics.txt" "$model"
}
load() {  # out concurrency seconds
  "$oha" --no-tui --output-format json --wait-ongoing-requests-after-deadline \
    -m POST -T image/jpeg -D "$photo" -c "$2" -z "${3}s" "$url" > "$1"
}

for variant in "${variants[@]}"; do
  window=${variant%%:*}
  delay=${variant#*:}
  cat > "$work/serve.toml" <<TOML
[server]
host = "127.0.0.1"
port = $port
intra_op_threads = $threads
[[models]]
id = "$model"
weights = "$weights"
device = "cpu"
max_batch_size = $max_batch
max_batch_delay_ms = $delay
batch_window = "$window"
TOML
  "$bin" serve --config "$work/serve.toml" > "$work/serve-$window-$delay.log" 2>&1 &
  server=$!
  for _ in $(seq 600); do
    curl -sf -o /dev/null "$base/readyz" && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve-$window-$delay.log" >&2; exit 1; }
    sleep 0.2
  done
  load "$work/warmup.json" "$max_batch" 2
  for c in "${levels[@]}"; do
    echo "### batch window $window, delay $delay ms, concurrency $c, ${seconds}s"
    before=$(batch_stats)
    load "$work/oha-$window-$delay-c$c.json" "$c" "$seconds"
    after=$(batch_stats)
    "$python" scripts/bench/record.py http "$records" "$work/oha-$window-$delay-c$c.json" \
      kind=window batch_window="$window" max_batch_delay_ms="$delay" concurrency="$c" \
      seconds="$seconds" max_batch_size="$max_batch" \
      --batch-before "$before" --batch-after "$after"
  done
  stop_server
done
