#!/usr/bin/env bash
# Overload run (`make overload`, not part of `make test`): offers far more
# load than the server can take and shows that the excess is shed at once
# with 503 + Retry-After while accepted requests keep a bounded latency and
# memory stays flat. Serves the fixture weights on the CPU on 127.0.0.1 only.
#   scripts/bench/overload.sh [SECONDS] [CONCURRENCY] [QUEUE_CAPACITY] [MAX_BATCH]
# Two phases on one server: clients that retry at once (the worst case) and
# clients that wait out Retry-After. Each prints loadgen's JSON line, the
# rejections by reason from /metrics, the mean batch time with the p99 bound
# it implies; at the end, the server's resident memory and its peak (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
concurrency=${2:-256}
queue_capacity=${3:-16}
max_batch=${4:-8}
port=${OVERLOAD_PORT:-18081}
threads=$(nproc)

# The libtorch that `make` builds against, when run outside make.
export LIBTORCH=${LIBTORCH:-$PWD/.venv/lib/$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')/site-packages/torch}
make --no-print-directory build fixtures >/dev/null
cargo build --release --locked --example loadgen --quiet
bin=target/release/seresnext-serve
loadgen=target/release/examples/loadgen
weights=target/fixtures/models/gluon_seresnext50_32x4d.safetensors
photos=(target/fixtures/photos/*.jpg target/fixtures/photos/*.png)
base=http://127.0.0.1:$port

config=$(mktemp --suffix .toml)
log=$(mktemp --suffix .log)
cat > "$config" <<TOML
[server]
host = "127.0.0.1"
port = $port
intra_op_threads = $threads
max_images_per_request = $max_batch
[[models]]
id = "gluon_seresnext50_32x4d"
weights = "$weights"
device = "cpu"
max_batch_size = $max_batch
max_batch_delay_ms = 2
queue_capacity = $queue_capacity
TOML
$bin serve --config "$config" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$config"' EXIT
for _ in $(seq 600); do
  curl -sf "$base/readyz" >/dev/null && break
  kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done

memory() { awk -v key="$1:" '$1 == key {print int($2 / 1024)}' "/proc/$server/status"; }
rss_ready=$(memory VmRSS)
url="$base/v1/models/gluon_seresnext50_32x4d:predict"

# One phase: loadgen with extra flags, then its numbers from loadgen and from
# the /metrics difference (rejections by reason, mean batch time).
phase() {
  local name=$1; shift
  curl -s "$base/metrics" > /tmp/overload.before
  echo "# $name: $concurrency closed-loop clients for ${seconds}s; queue_capacity $queue_capacity, max_batch_size $max_batch, $threads threads"
  $loadgen --url "$url" --concurrency "$concurrency" --seconds "$seconds" "$@" "${photos[@]}" | tee /tmp/overload.json
  curl -s "$base/metrics" > /tmp/overload.after
  python3 - "$queue_capacity" "$max_batch" <<'PY'
import json, re, sys
capacity, batch = int(sys.argv[1]), int(sys.argv[2])
def samples(path):
    out = {}
    for line in open(path):
        if line.startswith("seresnext_"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out
before, after = samples("/tmp/overload.before"), samples("/tmp/overload.after")
delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
rejections = {re.search(r'reason="(\w+)"', k).group(1): int(v)
              for k, v in delta.items() if k.startswith("seresnext_rejections_total") and v}
find = lambda prefix: next((v for k, v in delta.items() if k.startswith(prefix)), 0.0)
total, count = find("seresnext_inference_duration_seconds_sum"), find("seresnext_inference_duration_seconds_count")
mean = total / count if count else float("nan")
# A request admitted at a full queue waits for the batches ahead of it, the
# one running, and its own.
bound = (-(-capacity // batch) + 2) * mean * 1e3
run = json.load(open("/tmp/overload.json"))
ms = lambda key: float("nan") if run[key] is None else run[key]  # loadgen writes NaN as null
print(f"rejections by reason: {rejections}")
print(f"mean batch time {mean * 1e3:.0f} ms over {count:.0f} batches; expected p99 bound "
      f"~(ceil(queue/batch) + 2) x batch = {bound:.0f} ms; measured p99 {ms('p99_ms'):.0f} ms, "
      f"max {ms('max_ms'):.0f} ms; accepted {run['succeeded']}, shed {run['shed']} "
      f"(p99 time to 503 {ms('shed_p99_ms'):.1f} ms), Retry-After {run['retry_after_s']}")
PY
}

phase "retrying at once (worst case)"
phase "honoring Retry-After" --honor-retry-after

if kill -0 $server 2>/dev/null && curl -sf "$base/healthz" >/dev/null; then
  echo "# server alive after both runs; RSS ready $rss_ready MiB, now $(memory VmRSS) MiB, peak (VmHWM) $(memory VmHWM) MiB"
else
  echo "# the server died during the run; its log:"; cat "$log"; exit 1
fi
