#!/usr/bin/env bash
# The benchmark suite behind `make bench` (BENCHMARKS.md): one run, all figures
# from the same machine state, written to benches/results.json, then
# BENCHMARKS.md and benches/throughput_p99.png regenerated from it.
#   1. In-process forward: on CUDA first when `nvidia-smi -L` works (GPU time
#      is the scarce kind), ours in fp16/bf16/fp32 beside timm AMP fp16
#      channels-last and timm fp32, cuDNN benchmark on for both; then
#      `seresnext-serve bench` on both engines (libtorch, onnxruntime) against
#      timm eager (scripts/bench/bench_timm.py) and Python ONNX Runtime on
#      timm's torch.onnx export (scripts/bench/bench_onnxruntime.py) on the
#      CPU, alternating per batch size.
#   2. HTTP: our server twice (all three models, fixture weights, CPU; once
#      per engine), a LitServe server of timm's seresnext50_32x4d
#      (scripts/bench/litserve_server.py) and Triton via PyTriton
#      (scripts/bench/triton_peer.sh), all on 127.0.0.1, under oha closed-loop
#      load at each concurrency, alternating between them (the others paused),
#      the c=16 level in BENCH_HTTP_ROUNDS rounds; then each server's peak RSS.
# `make bench` first builds the release binary, the fixtures and the tools
# (scripts/bench/install-bench-tools.sh).
#
# On a GPU machine without cargo, the venv or the network, the CUDA part runs
# on its own with the bundle's binary and weights (README.md, "GPU check"):
#   BENCH_CUDA_ONLY=1 BENCH_PYTHON=python3 BENCH_BIN=target/gpu-bundle/bin/seresnext-serve \
#     BENCH_WEIGHTS_DIR=/tmp/seresnext-gpu-weights scripts/bench/run.sh
# It writes benches/results-cuda.json and leaves BENCHMARKS.md (the CPU run)
# alone. Serving over HTTP on the GPU is measured by scripts/gpu/verify.sh
# (its report has the HTTP table); this suite's HTTP part is the CPU
# comparison with LitServe.
#
# Settings, all optional:
#   THREADS              intra-op threads, ours and peers (default: nproc)
#   BENCH_SECONDS        seconds of load per HTTP level (20)
#   BENCH_WARMUP_SECONDS seconds of unrecorded load before a server's first level (3)
#   BENCH_CONCURRENCY    HTTP levels ("1 4 16 64")
#   BENCH_ITERATIONS     timed forward passes per batch size and round (6; 5 for the 101 models)
#   BENCH_ROUNDS         in-process rounds of gluon_seresnext50_32x4d on the CPU (3; the
#                        101 models: BENCH_ROUNDS_101, 1): every implementation runs
#                        once per round at each batch size, and the report takes each
#                        one's fastest round (noise on a shared machine only slows a run)
#   BENCH_HTTP_ROUNDS    rounds of the c=16 level (3), the level the targets compare:
#                        every server, with the in-process pass beside it, once per
#                        round, each round starting with the next server; the report
#                        takes each one's fastest round, as in process
#   BENCH_WARMUP         untimed forward passes before each batch size (2)
#   BENCH_BATCH_SIZES    in-process batches of gluon_seresnext50_32x4d ("1,2,4,8,16"),
#                        BENCH_BATCH_SIZES_101 of the 101 models ("1,8"),
#                        BENCH_CUDA_BATCH_SIZES on a GPU ("1,8,32,64,128,256")
#   BENCH_MAX_BATCH      max_batch_size of the servers (8)
#   BENCH_ORT_MAX_BATCH  max_batch_size of ours on onnxruntime (2: its cost per
#                        image grows past batch 2 on a small CPU; the engine
#                        table shows it, and at 16 clients max batch 2 served
#                        16.5 and 16.6 req/s against 15.8/13.0 for 4 and
#                        15.4/15.3 for 1, alternating, same session)
#   BENCH_BATCH_DELAY_MS our max_batch_delay_ms and LitServe's batch_timeout (5, our default)
#   BENCH_PHOTO          the JPEG every request carries (target/fixtures/photos/chelsea.jpg)
#   BENCH_SKIP_INPROCESS / BENCH_SKIP_HTTP / BENCH_SKIP_LITSERVE / BENCH_SKIP_TRITON / BENCH_SKIP_WINDOW
#                        =1 to leave a part out; the window study's own settings
#                        are in scripts/bench/batch_window.sh
#   BENCH_RSS_TARGET_MIB a peak-RSS target for the report to check (none: reported only)
#   OURS_BENCH_ARGS      extra flags for every `seresnext-serve bench`
#   BENCH_PYTHON         the python with torch and timm (.venv/bin/python when
#                        there is one, else python3); its torch/lib goes first on
#                        LD_LIBRARY_PATH, so a binary built elsewhere finds libtorch
#   BENCH_CUDA_ONLY      =1: only the CUDA in-process part (no CPU loop, no HTTP,
#                        no window study; needs a GPU); results in BENCH_RESULTS
#   BENCH_RESULTS        the results file (benches/results.json;
#                        benches/results-cuda.json with BENCH_CUDA_ONLY=1)
#   BENCH_BIN            our binary (target/release/seresnext-serve)
#   BENCH_WEIGHTS_DIR    the <model id>.safetensors files (target/fixtures/models)
set -euo pipefail
cd "$(dirname "$0")/../.."

threads=${THREADS:-$(nproc)}
seconds=${BENCH_SECONDS:-20}
warmup_seconds=${BENCH_WARMUP_SECONDS:-3}
read -r -a levels <<< "${BENCH_CONCURRENCY:-1 4 16 64}"
iterations=${BENCH_ITERATIONS:-6}
rounds=${BENCH_ROUNDS:-3}
rounds_101=${BENCH_ROUNDS_101:-1}
http_rounds=${BENCH_HTTP_ROUNDS:-3}
http_round=1
iterations_101=${BENCH_ITERATIONS_101:-${BENCH_ITERATIONS:-5}}
warmup=${BENCH_WARMUP:-2}
max_batch=${BENCH_MAX_BATCH:-8}
ort_max_batch=${BENCH_ORT_MAX_BATCH:-2}
batch_delay_ms=${BENCH_BATCH_DELAY_MS:-5}
photo=${BENCH_PHOTO:-target/fixtures/photos/chelsea.jpg}
rss_target_mib=${BENCH_RSS_TARGET_MIB:-null}
read -r -a ours_extra <<< "${OURS_BENCH_ARGS:-}"

if [ -n "${BENCH_PYTHON:-}" ]; then
  python=$BENCH_PYTHON
elif [ -x .venv/bin/python ]; then
  python=.venv/bin/python
else
  python=python3
fi
export BENCH_PYTHON=$python  # batch_window.sh takes the same one
cuda_only=${BENCH_CUDA_ONLY:-0}
bin=${BENCH_BIN:-target/release/seresnext-serve}
oha=target/bench-tools/bin/oha
fixtures=${BENCH_WEIGHTS_DIR:-target/fixtures/models}
work=target/bench/run
records=$work/records.jsonl
if [ "$cuda_only" = 1 ]; then
  results=${BENCH_RESULTS:-benches/results-cuda.json}
  export BENCH_SKIP_HTTP=1 BENCH_SKIP_WINDOW=1
else
  results=${BENCH_RESULTS:-benches/results.json}
fi
main_model=gluon_seresnext50_32x4d
declare -A timm_name=(
  [gluon_seresnext50_32x4d]=seresnext50_32x4d
  [gluon_seresnext101_32x4d]=seresnext101_32x4d
  [gluon_seresnext101_64x4d]=seresnext101_64x4d
)

if [ "$cuda_only" = 1 ]; then
  needs=("$bin" "$fixtures/$main_model.safetensors")
else
  needs=("$bin" "$fixtures"/gluon_seresnext{50_32x4d,101_32x4d,101_64x4d}.safetensors)
fi
if [ "${BENCH_SKIP_HTTP:-0}" != 1 ]; then
  needs+=("$oha" "$photo")
fi
for need in "${needs[@]}"; do
  [ -e "$need" ] || { echo "bench: $need is missing; run 'make bench'" >&2; exit 1; }
done
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') ||
  { echo "bench: $python cannot import torch; set BENCH_PYTHON" >&2; exit 1; }
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
has_gpu=0
if nvidia-smi -L >/dev/null 2>&1; then has_gpu=1; fi
if [ "$cuda_only" = 1 ] && [ "$has_gpu" != 1 ]; then
  echo "bench: BENCH_CUDA_ONLY=1, but nvidia-smi -L finds no GPU" >&2
  exit 1
fi
rm -rf "$work"
mkdir -p "$work" benches
: > "$records"
started=$SECONDS
say() { printf '\n### [%4ss] %s\n' "$((SECONDS - started))" "$*"; }

# ---------------------------------------------------------------- in-process
# Batch sizes, always with max_batch_size among them (target 2 divides by it).
with_max_batch() { tr ',' '\n' <<< "$1,$max_batch" | sort -nu | paste -sd, -; }
passes() { if [ "$1" = "$main_model" ]; then echo "$iterations"; else echo "$iterations_101"; fi; }

# Both with the same fixture weights (timm's own init, saved by `make
# fixtures`): the same values, so the same numerics (a different random init
# can differ in speed, e.g. through denormal activations).
ours_forward() {  # model device dtype batches [engine]
  local engine=${5:-libtorch} impl=ours
  [ "$engine" = libtorch ] || impl=ours_$engine
  "$bin" bench --engine "$engine" --model "$1" --weights "$fixtures/$1.safetensors" --device "$2" --dtype "$3" \
    --threads "$threads" --batch-sizes "$4" --warmup "$warmup" --iterations "$(passes "$1")" "${ours_extra[@]}" |
    "$python" scripts/bench/record.py tag "$records" kind=in_process impl="$impl" \
      model="$1" device="$2" dtype="$3" threads="$threads"
}
# Python ONNX Runtime on timm's torch.onnx export (exported once per model).
python_onnxruntime_forward() {  # model batches
  "$python" scripts/bench/bench_onnxruntime.py --model "${timm_name[$1]}" \
    --weights "$fixtures/$1.safetensors" --onnx-cache "$work/$1.onnx" \
    --threads "$threads" --batch-sizes "$2" --warmup "$warmup" --iterations "$(passes "$1")" |
    "$python" scripts/bench/record.py tag "$records" kind=in_process impl=onnxruntime_python \
      model="$1" device=cpu dtype=fp32 threads="$threads"
}
timm_forward() {  # model device label batches [flags]
  local model=$1 device=$2 label=$3 batches=$4
  shift 4
  "$python" scripts/bench/bench_timm.py --model "${timm_name[$model]}" --device "$device" \
    --weights "$fixtures/$model.safetensors" \
    --threads "$threads" --batch-sizes "$batches" --warmup "$warmup" \
    --iterations "$(passes "$model")" "$@" |
    "$python" scripts/bench/record.py tag "$records" kind=in_process impl=timm \
      model="$model" device="$device" dtype="$label" threads="$threads"
}

if [ "${BENCH_SKIP_INPROCESS:-0}" != 1 ] && [ "$has_gpu" = 1 ]; then
  # cuDNN benchmark mode on both sides: ours always turns it on for CUDA,
  # bench_timm.py does by default on CUDA.
  cuda_batches=${BENCH_CUDA_BATCH_SIZES:-1,8,32,64,128,256}
  for dtype in fp16 bf16 fp32; do
    say "in-process $main_model, cuda $dtype, batches $cuda_batches: ours"
    ours_forward "$main_model" cuda "$dtype" "$cuda_batches"
  done
  say "in-process $main_model, cuda, batches $cuda_batches: timm AMP fp16 channels-last, timm fp32"
  timm_forward "$main_model" cuda fp16 "$cuda_batches" --amp --channels-last --cudnn-benchmark
  timm_forward "$main_model" cuda fp32 "$cuda_batches" --cudnn-benchmark
fi

# The machine's fp32 ceiling (scripts/bench/ceiling.py), at the start,
# between the parts and at the end (the machine's speed drifts; the report
# takes the best): it bounds every server's img/s.
ceiling() {  # when
  say "fp32 ceiling ($1): torch.mm of 4096x4096, $threads threads"
  "$python" scripts/bench/ceiling.py --threads "$threads" |
    "$python" scripts/bench/record.py tag "$records" kind=ceiling when="$1"
}
if [ "$cuda_only" != 1 ]; then ceiling start; fi

if [ "${BENCH_SKIP_INPROCESS:-0}" != 1 ] && [ "$cuda_only" != 1 ]; then
  for model in gluon_seresnext50_32x4d gluon_seresnext101_32x4d gluon_seresnext101_64x4d; do
    if [ "$model" = "$main_model" ]; then
      batches=$(with_max_batch "${BENCH_BATCH_SIZES:-1,2,4,8,16}")
      model_rounds=$rounds
    else
      batches=${BENCH_BATCH_SIZES_101:-1,8}
      model_rounds=$rounds_101
    fi
    # One batch size at a time, all four in turn: the machine's load
    # drifts, and each ratio should compare neighbours in time. Each round
    # starts with the next implementation, so none is always the first
    # after a batch size changes.
    for round in $(seq "$model_rounds"); do
      for batch in ${batches//,/ }; do
        say "in-process $model, round $round/$model_rounds, batch $batch, cpu fp32, $threads threads"
        for turn in 0 1 2 3; do
          case $(((turn + round - 1) % 4)) in
            0) ours_forward "$model" cpu fp32 "$batch" ;;
            1) ours_forward "$model" cpu fp32 "$batch" onnxruntime ;;
            2) timm_forward "$model" cpu fp32 "$batch" ;;
            3) python_onnxruntime_forward "$model" "$batch" ;;
          esac
        done
      done
    done
  done
fi
if [ "$cuda_only" != 1 ] && [ "${BENCH_SKIP_HTTP:-0}" != 1 ]; then ceiling middle; fi

# ---------------------------------------------------------------------- HTTP
servers=()
cleanup() {
  local pid
  for pid in "${servers[@]}"; do
    # Each server leads its own process group (setsid): the group goes, and
    # with it LitServe's worker processes (woken first, if paused).
    kill -CONT -- "-$pid" 2>/dev/null || true
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${servers[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_ready() {  # name pid url log
  for _ in $(seq 1200); do
    curl -sf -o /dev/null "$3" && return 0
    kill -0 "$2" 2>/dev/null || { echo "bench: $1 exited while starting; its log:" >&2; cat "$4" >&2; exit 1; }
    sleep 0.5
  done
  echo "bench: $1 not ready after 10 minutes; its log:" >&2
  cat "$4" >&2
  exit 1
}

load() {  # out url content-type body concurrency seconds [oha flags]
  local out=$1 url=$2 type=$3 file=$4 c=$5 duration=$6
  shift 6
  "$oha" --no-tui --output-format json --wait-ongoing-requests-after-deadline \
    -m POST -T "$type" -D "$file" -c "$c" -z "${duration}s" "$@" "$url" > "$out"
}

batch_stats_from() {  # port
  curl -sf "http://127.0.0.1:$1/metrics" > "$work/metrics.txt"
  "$python" scripts/bench/record.py batch-stats "$work/metrics.txt" "$main_model"
}
batch_stats_ours() { batch_stats_from "$ours_port"; }
batch_stats_ours_onnxruntime() { batch_stats_from "$ours_ort_port"; }
batch_stats_litserve() { cat "$work/litserve.batches" 2>/dev/null || echo "0 0"; }
batch_stats_triton() { "$python" scripts/bench/triton_request.py batch-stats "$triton_metrics"; }

# The other server is paused (SIGSTOP to its process group) while one is
# measured: an idle LitServe still polls its queues, which costs the server
# under load CPU time on a small machine.
pause_others() {  # STOP|CONT server
  local pid
  for pid in "${servers[@]}"; do
    [ "$pid" = "$(server_pid "$2")" ] || kill "-$1" -- "-$pid" 2>/dev/null || true
  done
}
declare -A pid_of=()
server_pid() { echo "${pid_of[$1]:-}"; }

level() {  # server body concurrency url content-type body-file [oha flags]
  local server=$1 body=$2 c=$3 url=$4 type=$5 file=$6 before after out=$work/oha-$1-$2-c$3-r$http_round.json
  shift 6
  say "HTTP $server, $body body, concurrency $c, ${seconds}s (round $http_round)"
  pause_others STOP "$server"
  before=$("batch_stats_$server")
  load "$out" "$url" "$type" "$file" "$c" "$seconds" "$@"
  after=$("batch_stats_$server")
  pause_others CONT "$server"
  "$python" scripts/bench/record.py http "$records" "$out" kind=http server="$server" \
    body="$body" concurrency="$c" seconds="$seconds" max_batch_size="$max_batch" round="$http_round" \
    --batch-before "$before" --batch-after "$after"
}

if [ "${BENCH_SKIP_HTTP:-0}" != 1 ]; then
  # JSON bodies made once: our KServe V1 form and LitServe's {"image": b64}.
  b64=$(base64 -w0 "$photo")
  printf '{"instances": [{"image": {"b64": "%s"}}]}' "$b64" > "$work/ours.b64.json"
  printf '{"image": "%s"}' "$b64" > "$work/litserve.b64.json"

  # Ours twice, all three models each: on libtorch, and on ONNX Runtime.
  write_config() {  # file port engine max_batch
    cat > "$1" <<TOML
[server]
host = "127.0.0.1"
port = $2
intra_op_threads = $threads
log_format = "text"
TOML
    for model in gluon_seresnext50_32x4d gluon_seresnext101_32x4d gluon_seresnext101_64x4d; do
      cat >> "$1" <<TOML
[[models]]
id = "$model"
engine = "$3"
weights = "$fixtures/$model.safetensors"
device = "cpu"
max_batch_size = $4
max_batch_delay_ms = $batch_delay_ms
TOML
    done
  }
  start_ours() {  # server port engine max_batch
    write_config "$work/$1.toml" "$2" "$3" "$4"
    say "starting $1 on 127.0.0.1:$2 with all three models on $3 ($work/$1.toml)"
    setsid "$bin" serve --config "$work/$1.toml" > "$work/$1.log" 2>&1 &
    pid_of[$1]=$!
    servers+=("$!")
  }
  ours_port=$(free_port)
  start_ours ours "$ours_port" libtorch "$max_batch"
  ours_pid=${pid_of[ours]}
  ours_url="http://127.0.0.1:$ours_port/v1/models/$main_model:predict"
  # One at a time: two servers loading six models at once on 2 cores would
  # only slow both.
  wait_ready ours "$ours_pid" "http://127.0.0.1:$ours_port/readyz" "$work/ours.log"
  ours_ort_port=$(free_port)
  start_ours ours_onnxruntime "$ours_ort_port" onnxruntime "$ort_max_batch"
  ours_ort_url="http://127.0.0.1:$ours_ort_port/v1/models/$main_model:predict"

  run_litserve=0
  if [ "${BENCH_SKIP_LITSERVE:-0}" != 1 ]; then
    run_litserve=1
    litserve_port=$(free_port)
    say "starting LitServe on 127.0.0.1:$litserve_port (timm seresnext50_32x4d)"
    BENCH_BATCH_STATS=$work/litserve.batches setsid "$python" scripts/bench/litserve_server.py \
      --port "$litserve_port" --threads "$threads" \
      --weights "$fixtures/$main_model.safetensors" --max-batch-size "$max_batch" \
      --batch-timeout-ms "$batch_delay_ms" > "$work/litserve.log" 2>&1 &
    litserve_pid=$!
    pid_of[litserve]=$litserve_pid
    servers+=("$litserve_pid")
    litserve_url="http://127.0.0.1:$litserve_port/predict"
  fi

  curl -sf -H 'content-type: image/jpeg' --data-binary "@$photo" "$ours_url" > "$work/ours.sample.json"
  load "$work/oha-ours-warmup.json" "$ours_url" image/jpeg "$photo" "$max_batch" "$warmup_seconds"
  wait_ready ours_onnxruntime "${pid_of[ours_onnxruntime]}" "http://127.0.0.1:$ours_ort_port/readyz" \
    "$work/ours_onnxruntime.log"
  curl -sf -H 'content-type: image/jpeg' --data-binary "@$photo" "$ours_ort_url" > "$work/ours_onnxruntime.sample.json"
  load "$work/oha-ours_onnxruntime-warmup.json" "$ours_ort_url" image/jpeg "$photo" "$max_batch" "$warmup_seconds"
  if [ "$run_litserve" = 1 ]; then
    wait_ready LitServe "$litserve_pid" "http://127.0.0.1:$litserve_port/health" "$work/litserve.log"
    curl -sf -H 'content-type: application/json' --data-binary "@$work/litserve.b64.json" \
      "$litserve_url" > "$work/litserve.sample.json"
    load "$work/oha-litserve-warmup.json" "$litserve_url" application/json \
      "$work/litserve.b64.json" "$max_batch" "$warmup_seconds"
  fi

  # Triton (PyTriton: the real tritonserver, timm in a Python callable), sent
  # KServe V2 binary requests with the JPEG as BYTES; scripts/bench/triton_peer.sh
  # installs its own venv on first use.
  run_triton=0
  if [ "${BENCH_SKIP_TRITON:-0}" != 1 ]; then
    run_triton=1
    say "starting Triton (scripts/bench/triton_peer.sh)"
    eval "$(scripts/bench/triton_peer.sh "$photo" "$fixtures/$main_model.safetensors" "$threads" "$work")"
    pid_of[triton]=$triton_pid
    servers+=("$triton_pid")
    load "$work/oha-triton-warmup.json" "$triton_url" application/octet-stream "$triton_body" \
      "$max_batch" "$warmup_seconds" -H "Inference-Header-Content-Length: $triton_header_length"
  fi

  # The forward pass in process, right beside the HTTP level it is compared
  # with (every server paused): batch 1 beside c=1, the server's max batch
  # beside c=16. This machine's speed drifts by 20 % over minutes, more
  # than the overhead being measured; and it wanders within seconds, so the
  # pass is timed over 160 images (10-20 s, about what a level serves), not
  # a few passes (six passes of batch 4 took 1.5 s and once read 16.4 img/s
  # against 12-14 in every round).
  adjacent_forward() {  # engine batch level
    local impl=ours passes=$((160 / $2))
    [ "$1" = libtorch ] || impl=ours_$1
    [ "$passes" -ge "$iterations" ] || passes=$iterations
    say "in-process $main_model, batch $2, $1, $passes passes, beside the HTTP c=$3 level"
    pause_others STOP none
    "$bin" bench --engine "$1" --model "$main_model" --weights "$fixtures/$main_model.safetensors" \
      --device cpu --threads "$threads" --batch-sizes "$2" --warmup "$warmup" --iterations "$passes" |
      "$python" scripts/bench/record.py tag "$records" kind=in_process_adjacent impl="$impl" \
        model="$main_model" device=cpu dtype=fp32 threads="$threads" round="$http_round"
    pause_others CONT none
  }

  measure() {  # server concurrency: its level, after the pass it is compared with
    case $1 in
      ours)
        if [ "$2" = 1 ]; then adjacent_forward libtorch 1 "$2"; fi
        if [ "$2" = 16 ]; then adjacent_forward libtorch "$max_batch" "$2"; fi
        level ours jpeg "$2" "$ours_url" image/jpeg "$photo" ;;
      ours_onnxruntime)
        if [ "$2" = 1 ]; then adjacent_forward onnxruntime 1 "$2"; fi
        if [ "$2" = 16 ]; then adjacent_forward onnxruntime "$ort_max_batch" "$2"; fi
        level ours_onnxruntime jpeg "$2" "$ours_ort_url" image/jpeg "$photo" ;;
      litserve)
        level litserve b64json "$2" "$litserve_url" application/json "$work/litserve.b64.json" ;;
      triton)
        level triton v2binary "$2" "$triton_url" application/octet-stream "$triton_body" \
          -H "Inference-Header-Content-Length: $triton_header_length" ;;
    esac
  }
  order=(ours ours_onnxruntime)
  if [ "$run_litserve" = 1 ]; then order+=(litserve); fi
  if [ "$run_triton" = 1 ]; then order+=(triton); fi

  # Alternating, level by level: every server sees the same machine state.
  for c in "${levels[@]}"; do
    for server in "${order[@]}"; do measure "$server" "$c"; done
  done
  # The c=16 level, which the targets compare, again in more rounds, each
  # starting with the next server; record.py keeps each server's fastest
  # round (and the pass beside it), as for the in-process rounds.
  if [[ " ${levels[*]} " == *" 16 "* ]]; then
    for ((http_round = 2; http_round <= http_rounds; http_round++)); do
      for ((i = 0; i < ${#order[@]}; i++)); do
        measure "${order[(i + http_round - 1) % ${#order[@]}]}" 16
      done
    done
  fi
  http_round=1
  # The same JSON-with-base64 request shape as LitServe's, at c=16.
  level ours b64json 16 "$ours_url" application/json "$work/ours.b64.json"

  for server in "${!pid_of[@]}"; do
    memory=$("$python" scripts/bench/proctree_rss.py "${pid_of[$server]}")
    echo "$memory" | "$python" scripts/bench/record.py tag "$records" kind=memory server="$server" \
      models="$([[ $server == ours* ]] && echo 3 || echo 1)"
  done
fi

# ------------------------------------------------------------- batch window
if [ "${BENCH_SKIP_WINDOW:-0}" != 1 ] && [ "${BENCH_SKIP_HTTP:-0}" != 1 ]; then
  cleanup
  servers=()
  say "batch window study (scripts/bench/batch_window.sh)"
  THREADS=$threads BENCH_MAX_BATCH=$max_batch BENCH_PHOTO=$photo \
    scripts/bench/batch_window.sh "$records"
fi

if [ "$cuda_only" != 1 ]; then ceiling end; fi
say "writing $results"
"$python" scripts/bench/record.py finish "$records" "$results" \
  oha_bin="$oha" ours_bin="$bin" threads="$threads" bench_seconds="$seconds" \
  warmup_seconds="$warmup_seconds" iterations="$iterations" iterations_101="$iterations_101" \
  rounds="$rounds" rounds_101="$rounds_101" http_rounds="$http_rounds" \
  warmup_passes="$warmup" max_batch_size="$max_batch" ort_max_batch_size="$ort_max_batch" \
  batch_delay_ms="$batch_delay_ms" photo="$photo" rss_target_mib="$rss_target_mib" \
  ours_bench_args="${OURS_BENCH_ARGS:-}" concurrency="${levels[*]}" \
  pytriton_version="$(target/bench-tools/triton-venv/bin/python -c \
    'import importlib.metadata as m; print(m.version("nvidia-pytriton"))' 2>/dev/null || true)"
if [ "$cuda_only" = 1 ]; then
  # report.py would rewrite BENCHMARKS.md without its CPU figures (and needs
  # matplotlib, which a bare GPU machine lacks): the results file is the output.
  echo "bench: CUDA figures in $results (BENCHMARKS.md left as it is)"
else
  "$python" scripts/bench/report.py "$results" BENCHMARKS.md benches/throughput_p99.png
fi
say "done in $((SECONDS - started)) s"
