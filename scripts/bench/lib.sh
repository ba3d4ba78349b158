# shellcheck shell=bash
# Shared by the bench scripts that start the server and time it (source it).

# The time now, in seconds with nanoseconds.
now() { date +%s.%N; }

# wait_ready PORT PID LOG [POLL_SECONDS]: returns once /readyz answers 200;
# exits the script, printing LOG, if the server exits first.
wait_ready() {
  local port=$1 pid=$2 log=$3 poll=${4:-0.05}
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") == 200 ]]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server exited before ready:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep "$poll"
  done
}
