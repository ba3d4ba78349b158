#!/usr/bin/env bash
# One command on a GPU machine (issue 10): run from inside the folder that
# `make gpu-bundle` writes (target/gpu-bundle), on a machine with python3,
# torch (CUDA), timm and safetensors, and no cargo or network:
#
#   cd gpu-bundle && OUT=/somewhere scripts/gpu/verify.sh
#
#   1. env        the machine's own libtorch on LD_LIBRARY_PATH; nvidia-smi -L,
#                 the binary's ldd lines for libtorch_cuda
#   2. weights    the three models, timm random init (seeded, calibrated on the
#                 bundle's photos) as safetensors (scripts/gpu/make_weights.py)
#   3. errors     cuda:N past the last GPU, and no visible GPU: classify, bench
#                 and serve exit non-zero at once, naming the device, with no
#                 C++ backtrace
#   4. parity     classify on the device in fp32/fp16/bf16 against CPU fp32,
#                 every photo: top-1 equal, |dp| of the top-1 within 0.005
#                 (fp32, TF32) or 0.02 (fp16, bf16)
#   5. inprocess  `seresnext-serve bench` in fp16/bf16/fp32 for batches 1..256
#                 beside timm (AMP, channels_last, cuDNN benchmark) in the same run
#   6. http       one fp16 model served on the GPU, JPEG bodies, 1/16/64/256
#                 clients with the project's load generator (bin/loadgen):
#                 img/s, p50/p99, mean batch size, GPU memory
#   7. report     $OUT/report.json and $OUT/report.md (scripts/gpu/verify.py)
#
# Every step runs under `timeout` within one overall budget (VERIFY_BUDGET_S,
# 470 s on a GPU: the whole run stays under 8 minutes); a failing step is
# recorded and the next one runs. Exit status: 0 when every step passed its
# checks, 1 otherwise. The performance targets are reported beside the
# figures, and do not change the exit status.
#
# DEVICE=cpu is the rehearsal on a machine without a GPU: the same steps on
# the CPU (the error paths still expect CUDA to be missing), fp32 only, small
# batches and short levels, so only the CUDA branches are new on the day.
#
# Settings (environment, all optional):
#   DEVICE              cuda (default) or cpu
#   OUT                 where the logs and reports go (./out)
#   PYTHON              the python with torch, timm and safetensors (python3)
#   WEIGHTS_DIR         where the weights are made, and kept for a rerun
#                       (${TMPDIR:-/tmp}/seresnext-gpu-weights; not under OUT,
#                       which is copied back and would carry 660 MB)
#   VERIFY_BUDGET_S     seconds for the whole run (470 cuda, 3000 cpu)
#   VERIFY_BATCH_SIZES  in-process batches ("1,8,32,64,128,256"; cpu "1,2")
#   VERIFY_DTYPES       in-process precisions ("fp16 bf16 fp32"; cpu "fp32")
#   VERIFY_ITERATIONS / VERIFY_WARMUP   timed / untimed passes per batch (30/5; cpu 3/1)
#   VERIFY_HTTP_LEVELS  clients per HTTP level ("1 16 64 256"; cpu "1 4 16")
#   VERIFY_HTTP_SECONDS seconds per level (10; cpu 4)
#   VERIFY_MAX_BATCH / VERIFY_BATCH_DELAY_MS   the server's batching (128 / 2; cpu 8 / 5)
#   VERIFY_STEPS        the steps to run ("env weights errors parity inprocess http")
set -uo pipefail

bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
self=$bundle/scripts/gpu/verify.sh
cd "$bundle" || exit 2

export DEVICE=${DEVICE:-cuda}
export PYTHON=${PYTHON:-python3}
OUT=${OUT:-./out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export OUT
export WEIGHTS_DIR=${WEIGHTS_DIR:-${TMPDIR:-/tmp}/seresnext-gpu-weights}
export MAIN_MODEL=gluon_seresnext50_32x4d
export MODELS="gluon_seresnext50_32x4d gluon_seresnext101_32x4d gluon_seresnext101_64x4d"
export BIN=$bundle/bin/seresnext-serve
export LOADGEN=$bundle/bin/loadgen
export TOOLS="$bundle/scripts/gpu/verify.py"

case $DEVICE in
  cuda)
    budget=${VERIFY_BUDGET_S:-470}
    export BATCH_SIZES=${VERIFY_BATCH_SIZES:-1,8,32,64,128,256}
    export DTYPES=${VERIFY_DTYPES:-fp16 bf16 fp32}
    export PARITY_DTYPES="fp32 fp16 bf16"
    export ITERATIONS=${VERIFY_ITERATIONS:-30} WARMUP=${VERIFY_WARMUP:-5}
    export HTTP_LEVELS=${VERIFY_HTTP_LEVELS:-1 16 64 256}
    export HTTP_SECONDS=${VERIFY_HTTP_SECONDS:-10}
    export HTTP_DTYPE=fp16
    export MAX_BATCH=${VERIFY_MAX_BATCH:-128} BATCH_DELAY_MS=${VERIFY_BATCH_DELAY_MS:-2}
    # step limits in seconds, summing to the budget
    limits=(env=15 weights=90 errors=40 parity=80 inprocess=125 http=110)
    ;;
  cpu)
    budget=${VERIFY_BUDGET_S:-3000}
    export BATCH_SIZES=${VERIFY_BATCH_SIZES:-1,2}
    export DTYPES=${VERIFY_DTYPES:-fp32}
    export PARITY_DTYPES="fp32"
    export ITERATIONS=${VERIFY_ITERATIONS:-3} WARMUP=${VERIFY_WARMUP:-1}
    export HTTP_LEVELS=${VERIFY_HTTP_LEVELS:-1 4 16}
    export HTTP_SECONDS=${VERIFY_HTTP_SECONDS:-4}
    export HTTP_DTYPE=fp32
    export MAX_BATCH=${VERIFY_MAX_BATCH:-8} BATCH_DELAY_MS=${VERIFY_BATCH_DELAY_MS:-5}
    # generous: the rehearsal machine is small and shared
    limits=(env=120 weights=900 errors=300 parity=900 inprocess=600 http=400)
    ;;
  *)
    echo "verify.sh: DEVICE must be cuda or cpu, not '$DEVICE'" >&2
    exit 2
    ;;
esac

export VERIFY_STARTED=${VERIFY_STARTED:-$(date +%s)}
say() { printf '\n### [%4ss] %s\n' "$(($(date +%s) - VERIFY_STARTED))" "$*"; }
weights_of() { echo "$WEIGHTS_DIR/$1.safetensors"; }
photos() { find "$bundle/photos" -maxdepth 1 -type f \( -name '*.jpg' -o -name '*.png' \) | sort; }
jpegs() { find "$bundle/photos" -maxdepth 1 -type f -name '*.jpg' | sort; }

# ------------------------------------------------------------------- steps
# Each runs as its own process (`verify.sh --step NAME` under timeout), so a
# time box kills the step and everything it started, and nothing else.

step_env() {
  local ok=0 ldd_lines
  echo "torch/lib: $TORCH_LIB"
  echo "nvidia-smi -L:"
  nvidia-smi -L || { echo "  (nvidia-smi -L failed)"; [ "$DEVICE" = cpu ] || ok=1; }
  echo "ldd $BIN | libtorch_cuda:"
  ldd_lines=$(ldd "$BIN" | grep -E 'libtorch_cuda|libtorch_cpu|libc10_cuda|libcudart|not found')
  echo "$ldd_lines"
  # The binary must take the machine's libtorch_cuda, not a missing one.
  grep -q "libtorch_cuda.so => $TORCH_LIB/" <<< "$ldd_lines" || {
    echo "FAIL: libtorch_cuda.so does not resolve to $TORCH_LIB"
    ok=1
  }
  ! grep -q 'not found' <<< "$ldd_lines" || { echo "FAIL: a library is not found"; ok=1; }
  "$BIN" --version || ok=1
  LDD="$ldd_lines" "$PYTHON" - > "$OUT/env.json" <<'PY' || ok=1
import json, os, subprocess
import safetensors, timm, torch
def smi(*query):
    try:
        return subprocess.run(["nvidia-smi", *query], capture_output=True, text=True,
                              timeout=20).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return []
driver = smi("--query-gpu=driver_version", "--format=csv,noheader")
print(json.dumps({
    "torch": torch.__version__, "torch_cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    "timm": timm.__version__, "safetensors": safetensors.__version__,
    "cuda_available": torch.cuda.is_available(), "device_count": torch.cuda.device_count(),
    "gpus": smi("-L"), "driver": driver[0] if driver else None, "cpus": os.cpu_count(),
    "ldd": os.environ["LDD"].strip().splitlines(),
}))
PY
  cat "$OUT/env.json"
  if [ "$DEVICE" = cuda ]; then
    grep -q '"cuda_available": true' "$OUT/env.json" || { echo "FAIL: torch sees no GPU"; ok=1; }
  fi
  return "$ok"
}

step_weights() {
  local model ok=0
  "$PYTHON" scripts/gpu/make_weights.py "$WEIGHTS_DIR" "$bundle/photos" || ok=1
  for model in $MODELS; do
    [ -s "$(weights_of "$model")" ] || { echo "FAIL: $(weights_of "$model") missing"; ok=1; }
  done
  return "$ok"
}

step_errors() {
  local count ok=0 records=$OUT/errors.jsonl photo weights config
  count=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())') || count=0
  photo=$(jpegs | head -n 1)
  weights=$(weights_of "$MAIN_MODEL")
  config=$OUT/errors.toml
  cat > "$config" <<TOML
[server]
host = "127.0.0.1"
port = 0
[[models]]
id = "$MAIN_MODEL"
weights = "$weights"
TOML
  echo "libtorch sees $count GPU(s); cuda:$count is past the last one"
  local command
  local -a args
  for command in classify bench serve; do
    case $command in
      classify) args=(classify --model "$MAIN_MODEL" --weights "$weights" --top-k 1 "$photo") ;;
      bench) args=(bench --model "$MAIN_MODEL" --weights "$weights" --batch-sizes 1 --warmup 0 --iterations 1) ;;
      serve) args=(serve --config "$config") ;;
    esac
    "$PYTHON" "$TOOLS" expect-failure "$records" "$command --device cuda:$count" "cuda:$count" \
      -- "$BIN" "${args[@]}" --device "cuda:$count" || ok=1
    "$PYTHON" "$TOOLS" expect-failure --env CUDA_VISIBLE_DEVICES= "$records" \
      "$command --device cuda" "CUDA is not available" -- "$BIN" "${args[@]}" --device cuda || ok=1
  done
  return "$ok"
}

step_parity() {
  local model dtype bound dev ok=0 dir=$OUT/parity ref_threads
  local -a images
  local -A refs
  mkdir -p "$dir"
  mapfile -t images < <(photos)
  classify() {  # model device dtype out [flags]
    local model=$1 device=$2 dtype=$3 out=$4
    shift 4
    "$BIN" classify --model "$model" --weights "$(weights_of "$model")" --device "$device" \
      --dtype "$dtype" --top-k 5 "$@" "${images[@]}" > "$out" 2> "$out.log" ||
      { cat "$out.log"; return 1; }
  }
  # The CPU references run beside the device runs, a share of the cores each.
  ref_threads=$(($(nproc) / 3))
  ((ref_threads > 0)) || ref_threads=1
  for model in $MODELS; do
    classify "$model" cpu fp32 "$dir/$model.cpu-fp32.jsonl" --threads "$ref_threads" &
    refs[$model]=$!
  done
  for model in $MODELS; do
    for dtype in $PARITY_DTYPES; do
      say "parity $model: $DEVICE $dtype"
      dev=$dir/$model.$DEVICE-$dtype.jsonl
      classify "$model" "$DEVICE" "$dtype" "$dev" || ok=1
      if [ -n "${refs[$model]}" ]; then
        wait "${refs[$model]}" || { echo "FAIL: the cpu fp32 reference of $model"; ok=1; }
        refs[$model]=
      fi
      if [ "$dtype" = fp32 ]; then bound=0.005; else bound=0.02; fi
      "$PYTHON" "$TOOLS" parity "$OUT/parity.jsonl" "$model" "$dir/$model.cpu-fp32.jsonl" "$dev" \
        "$DEVICE" "$dtype" "$bound" || ok=1
    done
  done
  return "$ok"
}

step_inprocess() {
  local dtype ok=0 records=$OUT/inprocess.jsonl weights
  weights=$(weights_of "$MAIN_MODEL")
  ours() {  # dtype
    say "in process: ours, $DEVICE $1, batches $BATCH_SIZES"
    "$BIN" bench --model "$MAIN_MODEL" --weights "$weights" --device "$DEVICE" --dtype "$1" \
      --batch-sizes "$BATCH_SIZES" --warmup "$WARMUP" --iterations "$ITERATIONS" |
      "$PYTHON" "$TOOLS" tag "$records" impl=ours model="$MAIN_MODEL" dtype="$1"
  }
  timm() {  # label flags...
    local label=$1
    shift
    say "in process: timm $label $*, batches $BATCH_SIZES"
    "$PYTHON" scripts/bench/bench_timm.py --model seresnext50_32x4d --device "$DEVICE" \
      --weights "$weights" --batch-sizes "$BATCH_SIZES" --warmup "$WARMUP" \
      --iterations "$ITERATIONS" --channels-last "$@" |
      "$PYTHON" "$TOOLS" tag "$records" impl=timm model="$MAIN_MODEL" dtype="$label"
  }
  if [ "$DEVICE" = cuda ]; then
    # The comparison that matters first: a time box cut short leaves it standing.
    for dtype in $DTYPES; do
      ours "$dtype" || ok=1
      if [ "$dtype" = fp16 ]; then timm fp16 --amp --cudnn-benchmark || ok=1; fi
    done
  else
    for dtype in $DTYPES; do ours "$dtype" || ok=1; done
    timm fp32 || ok=1
  fi
  return "$ok"
}

step_http() {
  local ok=0 dir=$OUT/http port pid c before after url memory level_out
  local -a images
  mkdir -p "$dir"
  mapfile -t images < <(jpegs)
  port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$dir/serve.toml" <<TOML
[server]
host = "127.0.0.1"
port = $port
log_format = "text"

[[models]]
id = "$MAIN_MODEL"
weights = "$(weights_of "$MAIN_MODEL")"
device = "$DEVICE"
dtype = "$HTTP_DTYPE"
replicas = 1
max_batch_size = $MAX_BATCH
max_batch_delay_ms = $BATCH_DELAY_MS
# 256 clients, one image each, never shed.
queue_capacity = 1024
TOML
  cat "$dir/serve.toml"
  memory() {  # GPU memory in use (first GPU), or the server's RSS on the CPU, MiB
    if [ "$DEVICE" = cuda ]; then
      nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1 | tr -d ' '
    else
      awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"
    fi
  }
  [ "$DEVICE" = cuda ] && echo "GPU memory before the server: $(memory) MiB"
  "$BIN" serve --config "$dir/serve.toml" > "$dir/server.log" 2>&1 &
  pid=$!
  # shellcheck disable=SC2064 # pid is fixed now
  trap "kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null" EXIT
  url=http://127.0.0.1:$port
  say "waiting for the server on $url (load, warm every batch shape)"
  "$PYTHON" "$TOOLS" wait-ready "$url/readyz" 300 "$pid" || { tail -n 30 "$dir/server.log"; return 1; }
  "$PYTHON" "$TOOLS" get "$url/v1/models" > "$dir/models.json" && cat "$dir/models.json" && echo
  "$PYTHON" "$TOOLS" post-image "$url/v1/models/$MAIN_MODEL:predict" "${images[0]}" || ok=1
  say "warm-up load: ${MAX_BATCH} clients, 3 s"
  "$LOADGEN" --url "$url/v1/models/$MAIN_MODEL:predict" --concurrency "$MAX_BATCH" --seconds 3 \
    "${images[@]}" > "$dir/warmup.json" || ok=1
  for c in $HTTP_LEVELS; do
    say "HTTP: $c clients, ${HTTP_SECONDS} s"
    before=$("$PYTHON" "$TOOLS" batch-stats "$url/metrics" "$MAIN_MODEL")
    level_out=$dir/loadgen-c$c.json
    "$LOADGEN" --url "$url/v1/models/$MAIN_MODEL:predict" --concurrency "$c" \
      --seconds "$HTTP_SECONDS" "${images[@]}" > "$level_out" || ok=1
    after=$("$PYTHON" "$TOOLS" batch-stats "$url/metrics" "$MAIN_MODEL")
    memory=$(memory)
    "$PYTHON" "$TOOLS" http "$OUT/http.jsonl" "$level_out" device="$DEVICE" dtype="$HTTP_DTYPE" \
      max_batch_size="$MAX_BATCH" batch_delay_ms="$BATCH_DELAY_MS" level_seconds="$HTTP_SECONDS" \
      memory_mib="${memory:-null}" --before "$before" --after "$after" || ok=1
    grep -q '"errors":0' "$level_out" || { echo "FAIL: requests failed at $c clients"; ok=1; }
  done
  "$PYTHON" "$TOOLS" get "$url/metrics" > "$dir/metrics.txt" || true
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  trap - EXIT
  tail -n 5 "$dir/server.log"
  return "$ok"
}

# ---------------------------------------------------------------- dispatch
if [ "${1:-}" = --step ]; then
  case ${2:-} in
    env) step_env ;;
    weights) step_weights ;;
    errors) step_errors ;;
    parity) step_parity ;;
    inprocess) step_inprocess ;;
    http) step_http ;;
    *) echo "verify.sh: no step '${2:-}'" >&2; exit 2 ;;
  esac
  exit $?
fi

started=$SECONDS
deadline=$((SECONDS + budget))
report_reserve=10
mkdir -p "$OUT/logs"
rm -f "$OUT"/{steps.tsv,env.json,errors.jsonl,parity.jsonl,inprocess.jsonl,http.jsonl,report.json,report.md}
: > "$OUT/steps.tsv"
say "verify.sh: DEVICE=$DEVICE OUT=$OUT budget ${budget}s"

TORCH_LIB=$(timeout 60 "$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
if [ -z "$TORCH_LIB" ]; then
  echo "verify.sh: $PYTHON cannot import torch; set PYTHON" >&2
fi
export TORCH_LIB
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

run_step() {  # name limit
  local name=$1 limit=$2 left rc status t0
  left=$((deadline - SECONDS - report_reserve))
  ((limit > left)) && limit=$left
  if ((limit < 5)); then
    say "step $name: skipped, out of time"
    printf '%s\tskipped (out of time)\t0\t0\t0\n' "$name" >> "$OUT/steps.tsv"
    return
  fi
  say "step $name (limit ${limit}s)"
  t0=$SECONDS
  timeout -k 5 "$limit" "$self" --step "$name" 2>&1 | tee "$OUT/logs/$name.log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) status=passed ;;
    124 | 137) status="timed out" ;;
    *) status=failed ;;
  esac
  say "step $name: $status (exit $rc) in $((SECONDS - t0))s"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$((SECONDS - t0))" "$limit" >> "$OUT/steps.tsv"
}

for entry in "${limits[@]}"; do
  name=${entry%%=*}
  case " ${VERIFY_STEPS:-env weights errors parity inprocess http} " in
    *" $name "*) run_step "$name" "${entry#*=}" ;;
  esac
done

say "report"
timeout 60 "$PYTHON" "$TOOLS" finish "$OUT" --device "$DEVICE" --bundle "$bundle" \
  --seconds "$((SECONDS - started))"
rc=$?
say "verify.sh: done in $((SECONDS - started)) s, exit $rc ($OUT/report.md)"
exit "$rc"
