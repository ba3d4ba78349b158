#!/usr/bin/env bash
# Starts the Triton peer of `make bench` and leaves it running:
#
#   scripts/bench/triton_peer.sh PHOTO WEIGHTS THREADS OUTDIR
#
# installs target/bench-tools/triton-venv when needed (install-triton.sh),
# starts scripts/bench/triton_server.py in its own process group (setsid) on
# free loopback ports with --threads THREADS --weights WEIGHTS, max batch 8 and
# a 5 ms queue delay, logging to OUTDIR/triton.log; waits (up to 3 minutes) for
# /v2/models/seresnext50/ready; writes the request for PHOTO to
# OUTDIR/triton.body and sends it once with curl, expecting 200 and a sane
# top-5 (answer in OUTDIR/triton.response). Then prints ONE line to stdout:
#
#   triton_pid=<pid> triton_url=http://127.0.0.1:<port>/v2/models/seresnext50/infer triton_metrics=http://127.0.0.1:<mport>/metrics triton_body=<OUTDIR>/triton.body triton_header_length=<n>
#
# for the caller to `eval`. The load goes as
#   oha -m POST -T application/octet-stream \
#       -H "Inference-Header-Content-Length: $triton_header_length" -D "$triton_body" ... "$triton_url"
# and the caller stops the server with `kill -TERM -- -$triton_pid` (Triton
# then shuts down cleanly in about 8 s, more with requests in flight; poll
# `kill -0 $triton_pid` until it is gone: it is not the caller's child). Batch counts:
#   scripts/bench/triton_request.py batch-stats "$triton_metrics"  ->  "<images> <batches>"
#
# Everything else (progress, errors) goes to stderr. On failure the server is
# stopped, the log's tail is shown, and the exit status is 1.
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: $0 PHOTO WEIGHTS THREADS OUTDIR" >&2
  exit 2
fi
photo=$1 weights=$2 threads=$3 outdir=$4
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$root/target/bench-tools/triton-venv
model=seresnext50

[ -f "$photo" ] || { echo "triton_peer: no photo $photo" >&2; exit 1; }
[ -f "$weights" ] || { echo "triton_peer: no weights $weights" >&2; exit 1; }
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
photo=$(cd "$(dirname "$photo")" && pwd)/$(basename "$photo")
weights=$(cd "$(dirname "$weights")" && pwd)/$(basename "$weights")

"$here/install-triton.sh" >&2

# Three free loopback ports (HTTP, gRPC, metrics), all held open together so
# they differ; the small race until Triton binds them is acceptable here.
read -r port grpc_port metrics_port < <("$venv/bin/python" -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')

log=$outdir/triton.log
started=$(date +%s.%N)
setsid "$venv/bin/python" "$here/triton_server.py" \
  --port "$port" --grpc-port "$grpc_port" --metrics-port "$metrics_port" \
  --threads "$threads" --weights "$weights" --max-batch-size 8 --batch-delay-ms 5 \
  >"$log" 2>&1 </dev/null &
pid=$!

fail() {
  echo "triton_peer: $*" >&2
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  echo "--- last lines of $log:" >&2
  tail -n 30 "$log" | cut -c1-300 >&2 || true
  exit 1
}

# The caller stops the server by its process group: $pid must lead it (it
# does unless this script runs with job control on, where setsid forks).
[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] || fail "server pid $pid does not lead its process group"

base=http://127.0.0.1:$port/v2/models/$model
# /v2/health/ready turns 200 before the model is loaded, even when its load
# fails: the model's own ready endpoint is the one to wait on.
deadline=$((SECONDS + 180))
until curl -sf -o /dev/null "$base/ready"; do
  kill -0 "$pid" 2>/dev/null || fail "triton_server.py exited before $model was ready"
  [ $SECONDS -lt $deadline ] || fail "$model not ready after 180 s"
  sleep 0.5
done
ready_s=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "triton_peer: $model ready on port $port after ${ready_s} s (pid $pid)" >&2

body=$outdir/triton.body
header_length=$("$venv/bin/python" "$here/triton_request.py" body "$photo" "$body") ||
  fail "could not write the request for $photo"
code=$(curl -s -o "$outdir/triton.response" -w '%{http_code}' --max-time 60 \
  -H 'Content-Type: application/octet-stream' -H "Inference-Header-Content-Length: $header_length" \
  --data-binary "@$body" "$base/infer") || fail "curl to $base/infer failed"
[ "$code" = 200 ] || fail "$base/infer answered $code: $(head -c 500 "$outdir/triton.response")"
top=$("$venv/bin/python" "$here/triton_request.py" check "$outdir/triton.response") ||
  fail "bad answer from $base/infer"
echo "triton_peer: one request answered 200, top-1 class and probability: $top" >&2

printf 'triton_pid=%q triton_url=%q triton_metrics=%q triton_body=%q triton_header_length=%q\n' \
  "$pid" "$base/infer" "http://127.0.0.1:$metrics_port/metrics" "$body" "$header_length"
