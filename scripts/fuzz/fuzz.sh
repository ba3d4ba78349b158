#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target of fuzz/ for FUZZ_SECONDS each
# (default 60) and prints how many inputs each one executed.
#
#   FUZZ_SECONDS=300 make fuzz                 # longer
#   FUZZ_TARGETS="json weights" make fuzz      # some targets only
#
# Stable Rust only: the targets are built with `--sanitizer none` (no
# AddressSanitizer, which needs nightly). Little is lost: the crate denies
# `unsafe_code`, so what fuzzing finds here is panics, hangs and runaway
# allocations, which libFuzzer catches without a sanitizer: -timeout for
# hangs and -rss_limit_mb for memory.
#
# The corpus grows in fuzz/corpus/<target> (not committed). The committed
# fuzz/regression/<target> is read as extra seeds and never written. A crash
# stops the run and leaves its input in fuzz/artifacts/<target>/: fix the
# bug, then copy the input into fuzz/regression/<target>/ so that
# tests/it/fuzz_regression.rs replays it in every `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-60}
# A decode of the largest image the limits admit (50 Mpixel) takes seconds,
# not tens of them; anything longer is a hang.
timeout=${FUZZ_TIMEOUT:-20}
# A request may use a few hundred MB by design (the decode limits bound one
# image at ~400 MB); libtorch's libraries take their share of the RSS too.
rss_limit_mb=${FUZZ_RSS_LIMIT_MB:-2560}
# Longest input tried. libFuzzer's default (the largest seed, at least 4 KiB)
# keeps images and checkpoints small; 64 KiB lets them grow, and libFuzzer
# still starts short and lengthens inputs only as coverage rewards it.
max_len=${FUZZ_MAX_LEN:-65536}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz@0.13.2
fi
: "${LIBTORCH:?set LIBTORCH (the Makefile does)}"
# The targets link libtorch (through the service's crate) without the rpath
# its build.rs gives the service's own binaries.
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

build_flags=(--sanitizer none --release --debug-assertions)
targets=${FUZZ_TARGETS:-$(cd fuzz && cargo fuzz list)}
(cd fuzz && cargo fuzz build "${build_flags[@]}")

summary=()
for target in $targets; do
  mkdir -p "fuzz/corpus/$target"
  log="fuzz/corpus/$target.log"
  echo "fuzz: $target for ${seconds}s"
  status=0
  (cd fuzz && cargo fuzz run "${build_flags[@]}" "$target" \
    "corpus/$target" "regression/$target" -- \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_limit_mb" \
    -max_len="$max_len" \
    -print_final_stats=1) >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz: $target FAILED (exit $status); the input is in fuzz/artifacts/$target/," \
      "the whole log in $log"
    exit 1
  fi
  summary+=("$(printf '%-16s %12s executions  %6s corpus inputs' "$target" "${runs:-?}" "$corpus")")
done
printf 'fuzz: no crash, hang or OOM in %ss per target\n' "$seconds"
printf '  %s\n' "${summary[@]}"
