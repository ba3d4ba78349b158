#!/usr/bin/env bash
# Cold start, measured: for a release binary and a set of models, the time
# from process start to /readyz 200, peak RSS during start-up (VmHWM), RSS
# once ready (VmRSS), and the first request's latency against the p50 of
# the sequential requests that follow it.
#
# usage: scripts/bench/startup.sh BINARY [RUNS] [MODEL...]
#   BINARY  a release build of seresnext-serve
#   RUNS    tries per measurement (default 3)
#   MODEL   model ids (default: gluon_seresnext50_32x4d); "all" = the three
# env: FIXTURES (default target/fixtures; its models/<id>.safetensors are
#      served on the CPU), PORT (default 18480), REQUESTS (default 20),
#      IMAGE (default: the first fixture photo), EXTRA_TOML (appended to
#      each [[models]] table, e.g. 'warmup = "all"').
# Prints one line per run and a median line; needs curl and python3.
set -euo pipefail

# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

binary=${1:?usage: startup.sh BINARY [RUNS] [MODEL...]}
runs=${2:-3}
shift $(( $# >= 2 ? 2 : $# ))
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then models=(gluon_seresnext50_32x4d); fi
if [[ ${models[0]} == all ]]; then
  models=(gluon_seresnext50_32x4d gluon_seresnext101_32x4d gluon_seresnext101_64x4d)
fi
fixtures=${FIXTURES:-target/fixtures}
port=${PORT:-18480}
requests=${REQUESTS:-20}
image=${IMAGE:-$(find "$fixtures/photos" -type f -name "*.jpg" | sort | head -n 1)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
config=$work/config.toml
{
  printf '[server]\nhost = "127.0.0.1"\nport = %s\n' "$port"
  for model in "${models[@]}"; do
    printf '\n[[models]]\nid = "%s"\nweights = "%s"\ndevice = "cpu"\n%s\n' \
      "$model" "$(realpath "$fixtures/models/$model.safetensors")" "${EXTRA_TOML:-}"
  done
} > "$config"

measure() {
  local started pid ready_s hwm rss first rest
  started=$(now)
  "$binary" serve --config "$config" > "$work/log" 2>&1 &
  pid=$!
  wait_ready "$port" "$pid" "$work/log"
  ready_s=$(python3 -c "print(f'{$(now) - $started:.2f}')")
  # Where the time went, by model and phase (the last run's is printed).
  curl -s "http://127.0.0.1:$port/metrics" | grep '^seresnext_model_load_seconds' > "$work/phases" || true
  hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
  rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")
  : > "$work/latency"
  for _ in $(seq "$requests"); do
    curl -s -o /dev/null -w '%{time_total}\n' -X POST \
      -H 'content-type: application/octet-stream' --data-binary "@$image" \
      "http://127.0.0.1:$port/v1/models/${models[0]}:predict" >> "$work/latency"
  done
  first=$(head -n 1 "$work/latency")
  rest=$(tail -n +2 "$work/latency" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
  kill -TERM "$pid"
  wait "$pid" || true
  python3 -c "print(f'ready_s={$ready_s:.2f} peak_rss_mib=$hwm ready_rss_mib=$rss first_ms={$first * 1000:.1f} p50_ms={$rest * 1000:.1f} first_over_p50={$first / $rest:.2f}')"
}

echo "binary=$binary models=${models[*]} runs=$runs"
for run in $(seq "$runs"); do
  echo "run $run: $(measure)"
done | tee "$work/runs"
echo "phases of the last run (seconds):"
sed 's/^seresnext_model_load_seconds/  /' "$work/phases"
python3 - "$work/runs" <<'EOF'
import statistics, sys
rows = [dict(kv.split("=") for kv in line.split(": ", 1)[1].split()) for line in open(sys.argv[1]) if line.startswith("run ")]
keys = rows[0].keys()
print("median: " + " ".join(f"{k}={statistics.median(float(r[k]) for r in rows):g}" for k in keys))
EOF
