# bench/unicast-common.sh: what the side-by-side unicast scripts share (compare-revisions,
# idempotency-keys, replica-wait). Sourced, not run: from the checkout's root, after the
# script's own options are read.
#
#   bench_begin NAME        names the script in messages, makes $work (removed at exit,
#                           with every process started here), sets $nice_cmd
#   bench_build TARGETS...  builds TARGETS of the release preset (notify-loadgen always)
#   free_port               prints a loopback port nothing listens on now
#   start_redis NAME PORT [ARGS...]
#                           redis-server on CPU 1 (the load generator's), no persistence,
#                           its files in $work/NAME; waits up to 10 s for PING
#   run_unicast LABEL DEMO [DEMO ARGS...] [-- LOADGEN ARGS...]
#                           one flat-out or paced run (1,000 SSE connections, 8 keep-alive
#                           publishers, $duration s after 2 s of warm-up): the demo on CPU 0,
#                           notify-loadgen on CPU 1, appended to $work/runs.json; a failed run
#                           is reported and the next one goes on
#   bench_medians           the medians per label (bench/unicast-medians)
# shellcheck shell=bash

bench_begin() {
  bench_name=$1
  loadgen=build/release/bench/notify-loadgen
  nice_cmd=()
  (( EUID == 0 )) && nice_cmd=(nice -n -10)
  work=$(mktemp -d)
  bench_pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local pid
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

bench_build() {
  cmake --preset release >/dev/null
  cmake --build build/release -j2 --target "$@" notify-loadgen
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_redis() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$work/$name"
  taskset -c 1 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work/$name" "$@" >"$work/$name.log" 2>&1 &
  bench_pids+=($!)
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$bench_name: redis-server $name did not start: $(tail -n 3 "$work/$name.log")" >&2
  exit 1
}

run_unicast() {
  local label=$1 demo=$2
  shift 2
  local demo_args=() loadgen_args=()
  while (( $# )) && [[ $1 != -- ]]; do demo_args+=("$1"); shift; done
  (( $# )) && shift
  loadgen_args=("$@")
  if ! "${nice_cmd[@]}" taskset -c 1 "$loadgen" --scenario unicast --protocol sse \
    --connections 1000 --publishers 8 --duration "$duration" --warmup 2000 \
    "${loadgen_args[@]}" --allow-loss --label "$label" --json "$work/runs.json" \
    --spawn "${nice_cmd[@]}" taskset -c 0 "$demo" --port 0 --batch-ms 0 \
    "${demo_args[@]}" >"$work/run.log" 2>&1; then
    echo "$bench_name: $label${round:+ round $round} failed:" >&2
    tail -n 5 "$work/run.log" >&2
  fi
}

bench_medians() {
  bench/unicast-medians "$work/runs.json"
}
