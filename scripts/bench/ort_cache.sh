#!/usr/bin/env bash
# Start-up with and without [onnxruntime] cache_dir, A/B interleaved so a
# busy machine weighs on every variant alike: each round starts the server
# without the cache ("off"), with an empty cache directory ("write": builds
# and saves the graph) and again on that directory ("hit": loads the saved
# graph). Per start: seconds from process start to /readyz 200, and the
# graph build (fold) and session creation times from the
# `onnxruntime session built` log line; then the medians, and the cache
# file's size. The weights and the cache file are read from the page cache
# (both were just read or written), as on a quick restart.
#
# usage: scripts/bench/ort_cache.sh BINARY [ROUNDS] [MODEL...]
#   BINARY  a release build of seresnext-serve
#   ROUNDS  default 3
#   MODEL   default gluon_seresnext50_32x4d
# env: FIXTURES (default target/fixtures), PORT (default 18490), THREADS
#      (intra-op threads, default 0 = every core). Needs curl and python3.
set -euo pipefail

# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

binary=${1:?usage: ort_cache.sh BINARY [ROUNDS] [MODEL...]}
rounds=${2:-3}
shift $(( $# >= 2 ? 2 : $# ))
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then models=(gluon_seresnext50_32x4d); fi
fixtures=${FIXTURES:-target/fixtures}
port=${PORT:-18490}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# config MODEL CACHE_DIR ("" = off)
config() {
  printf '[server]\nhost = "127.0.0.1"\nport = %s\nintra_op_threads = %s\n' "$port" "${THREADS:-0}"
  if [[ -n $2 ]]; then printf '\n[onnxruntime]\ncache_dir = "%s"\n' "$2"; fi
  printf '\n[[models]]\nid = "%s"\nweights = "%s"\ndevice = "cpu"\nengine = "onnxruntime"\n' \
    "$1" "$(realpath "$fixtures/models/$1.safetensors")"
}

# start MODEL VARIANT CACHE_DIR: one start, one result line.
start() {
  config "$1" "$3" > "$work/config.toml"
  local started pid ready_s
  started=$(now)
  "$binary" serve --config "$work/config.toml" > "$work/log" 2>&1 &
  pid=$!
  wait_ready "$port" "$pid" "$work/log" 0.02
  ready_s=$(python3 -c "print(f'{$(now) - $started:.2f}')")
  kill -TERM "$pid"
  wait "$pid" || true
  local line graph session cache
  line=$(grep 'onnxruntime session built' "$work/log" | sed 's/\x1b\[[0-9;]*m//g')
  graph=$(grep -o 'graph_s=[0-9.e-]*' <<< "$line" | cut -d= -f2)
  session=$(grep -o 'session_s=[0-9.e-]*' <<< "$line" | cut -d= -f2)
  cache=$(sed 's/.*cache=//' <<< "$line")
  printf '%s %s ready_s=%s graph_s=%.3f session_s=%.3f cache=%s\n' \
    "$1" "$2" "$ready_s" "$graph" "$session" "${cache:-?}"
}

echo "binary=$binary rounds=$rounds models=${models[*]} threads=${THREADS:-0}"
for model in "${models[@]}"; do
  for round in $(seq "$rounds"); do
    dir=$work/cache-$model-$round
    start "$model" off ""
    start "$model" write "$dir"
    start "$model" hit "$dir"
    size=$(du -b "$dir"/*.onnx | awk '{print $1}')
    echo "$model cache_file_bytes=$size"
    rm -rf "$dir"
  done
done | tee "$work/results"

python3 - "$work/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 3 or parts[1] not in ("off", "write", "hit"):
        continue
    fields = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    rows.setdefault((parts[0], parts[1]), []).append(fields)
print("medians:")
for model in dict.fromkeys(m for m, _ in rows):
    off = statistics.median(float(r["ready_s"]) for r in rows[(model, "off")])
    for variant in ("off", "write", "hit"):
        runs = rows[(model, variant)]
        med = {k: statistics.median(float(r[k]) for r in runs) for k in ("ready_s", "graph_s", "session_s")}
        print(f"  {model} {variant:5} ready_s={med['ready_s']:.2f} graph_s={med['graph_s']:.3f} "
              f"session_s={med['session_s']:.3f} ready/off={med['ready_s'] / off:.2f}x (n={len(runs)})")
PY
