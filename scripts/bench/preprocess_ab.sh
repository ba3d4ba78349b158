#!/usr/bin/env bash
# Two builds of benches/preprocess.rs measured side by side: ROUNDS rounds,
# each running A then B (criterion, short measurements), and per image the
# median of the per-round estimates and the ratio B/A. Interleaving is what
# makes the ratio trustworthy on a machine whose speed drifts by tens of
# percent over minutes.
#
# usage: scripts/bench/preprocess_ab.sh BENCH_A BENCH_B [ROUNDS]
#   BENCH_A/B  bench executables (`cargo bench --bench preprocess --no-run`
#              prints the path), e.g. one built at an older commit
# env: SERESNEXT_FIXTURES (default target/fixtures)
set -euo pipefail
a=${1:?usage: preprocess_ab.sh BENCH_A BENCH_B [ROUNDS]}
b=${2:?usage: preprocess_ab.sh BENCH_A BENCH_B [ROUNDS]}
rounds=${3:-5}
export SERESNEXT_FIXTURES=${SERESNEXT_FIXTURES:-target/fixtures}
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# "label image milliseconds" for each benchmark of one run.
run() {
  "$2" --bench --measurement-time 3 --warm-up-time 1 --noplot 2>/dev/null |
    awk -v label="$1" '
      /^prepare\// { name = $1; sub("prepare/", "", name) }
      /time:/ && name != "" {
        for (i = 1; i <= NF; i++) if ($i == "time:") { value = $(i + 3); unit = $(i + 4) }
        if (unit == "µs") value /= 1000; else if (unit == "s") value *= 1000
        print label, name, value; name = ""
      }'
}

for round in $(seq "$rounds"); do
  run A "$a" >> "$results"
  run B "$b" >> "$results"
  echo "round $round of $rounds done" >&2
done

python3 - "$results" <<'PY'
import collections, statistics, sys
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, name, ms = line.split()
    times[(label, name)].append(float(ms))
names = sorted({name for _, name in times})
print(f"{'image':40} {'A median ms':>12} {'B median ms':>12} {'B/A':>6}")
for name in names:
    a, b = statistics.median(times[("A", name)]), statistics.median(times[("B", name)])
    print(f"{name:40} {a:12.3f} {b:12.3f} {b / a:6.2f}")
PY
