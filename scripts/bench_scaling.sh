#!/usr/bin/env bash
# Multi-process scaling of `synthsweep run` on this machine: the same fixed-cost MAD sweep
# (every task runs exactly MAX_ITER iterations on one 64 px image) on 1 process and on 2
# processes x 1 worker x 1 libtorch thread each, over loopback TCP (timely). Prints the
# throughput of each, the efficiency thr(2) / (2 * thr(1)), and the dispatch overhead:
# the mean time an idle worker waits between asking process 0 for a task and getting it,
# plus a run of 1-iteration tasks where dispatch dominates.
#
#   bash scripts/bench_scaling.sh                 # builds the release binary first
#   BIN=target/debug/synthsweep bash scripts/bench_scaling.sh
#   TASKS=24 MAX_ITER=300 bash scripts/bench_scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TASKS="${TASKS:-12}"
MAX_ITER="${MAX_ITER:-150}"
TINY_TASKS="${TINY_TASKS:-60}"
PORT="${PORT:-$((23000 + $$ % 1000 * 4))}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p synthsweep
  BIN=target/release/synthsweep
fi
BIN="$(realpath "$BIN")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp sweeps/images/einstein_64.pgm "$WORK/"

spec() { # name max_iter repeats
  cat > "$WORK/$1.toml" <<SPEC
name = "$1"
synth = "mad"
repeats = $3
[params]
image = "einstein_64.pgm"
optimized_metric = "mse"
reference_metric = "ssim_distance"
minmax = "max"
max_iter = $2
initial_noise = 0.1
stop_criterion = 1e-12
SPEC
}
spec fixed "$MAX_ITER" "$TASKS"
spec tiny 1 "$TINY_TASKS"

now() { date +%s.%N; }
common=(--workers 1 --threads 1 --batch-seconds 5)

# run_local NAME -> seconds
run_local() {
  local t0 t1
  t0=$(now)
  "$BIN" run "$WORK/$1.toml" --out "$WORK/out-$1-1" "${common[@]}" >"$WORK/$1-1.log" 2>&1
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# run_two NAME -> seconds (both processes started together; ends when both have)
run_two() {
  local t0 t1 p0 p1
  t0=$(now)
  "$BIN" run "$WORK/$1.toml" --out "$WORK/out-$1-2" "${common[@]}" --processes 2 --process 0 --port "$PORT" >"$WORK/$1-2.p0.log" 2>&1 &
  p0=$!
  "$BIN" run "$WORK/$1.toml" --out "$WORK/out-$1-2" "${common[@]}" --processes 2 --process 1 --port "$PORT" >"$WORK/$1-2.p1.log" 2>&1 &
  p1=$!
  wait "$p0"; wait "$p1"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# The dispatch phase alone (from process 0's progress line "finished N of M tasks in X s").
phase() { grep -o 'tasks in [0-9.]* s' "$1" | tail -1 | awk '{print $3}'; }
# Mean wait from request to task (ms) of a process log.
waitms() { grep -o '[0-9.]* ms mean' "$1" | tail -1 | awk '{print $1}'; }

echo "scaling: $TASKS MAD tasks of $MAX_ITER iterations (64 px, mse vs ssim), 1 worker x 1 thread per process, $(nproc) cores"
w1=$(run_local fixed); s1=$(phase "$WORK/fixed-1.log")
w2=$(run_two fixed); s2=$(phase "$WORK/fixed-2.p0.log")
for f in "$WORK"/fixed-2.p*.log; do
  grep -q 'results:\|joined run' "$f" || { echo "bench: a 2-process run failed:"; cat "$f"; exit 1; }
done
awk -v n="$TASKS" -v w1="$w1" -v w2="$w2" -v s1="$s1" -v s2="$s2" 'BEGIN {
  printf "  1 process : %6.2f s wall, %6.2f s dispatching -> %6.2f tasks/s (%.2f wall)\n", w1, s1, n / s1, n / w1
  printf "  2 processes: %6.2f s wall, %6.2f s dispatching -> %6.2f tasks/s (%.2f wall)\n", w2, s2, n / s2, n / w2
  printf "  efficiency thr(2) / (2 thr(1)): %.2f (dispatching), %.2f (wall, incl. start-up and connection)\n", (n / s2) / (2 * n / s1), (n / w2) / (2 * n / w1)
}'
echo "  per-task wait for a task (request -> assignment): p0 $(waitms "$WORK/fixed-2.p0.log") ms, p1 $(waitms "$WORK/fixed-2.p1.log") ms"

echo "dispatch: $TINY_TASKS MAD tasks of 1 iteration"
t1=$(run_local tiny); ts1=$(phase "$WORK/tiny-1.log")
t2=$(run_two tiny); ts2=$(phase "$WORK/tiny-2.p0.log")
awk -v n="$TINY_TASKS" -v t1="$t1" -v t2="$t2" -v s1="$ts1" -v s2="$ts2" 'BEGIN {
  printf "  1 process : %6.2f s wall, %6.3f s dispatching = %5.2f ms per task\n", t1, s1, 1000 * s1 / n
  printf "  2 processes: %6.2f s wall, %6.3f s dispatching = %5.2f ms per task per process\n", t2, s2, 1000 * s2 * 2 / n
}'
echo "  per-task wait for a task (request -> assignment): p0 $(waitms "$WORK/tiny-2.p0.log") ms, p1 $(waitms "$WORK/tiny-2.p1.log") ms"
n2=$(find "$WORK/out-fixed-2/tasks" -name '*.parquet' | wc -l)
echo "check: fixed 2-process run committed $n2 batch file(s); logs kept only on failure"
