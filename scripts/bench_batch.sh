#!/usr/bin/env bash
# Batched vs one-at-a-time tasks/s (`synthsweep run --batch N`): a quickstart-like MAD study
# (MSE vs SSIM both ways, min and max, the three 64 px sample images, 2 seeds: 24 tasks) and
# a metamer study (the front-end model luminance_contrast_gain_control and a Gaussian, the
# three sample images, 4 seeds: 24 tasks), each run with --batch 1 and each N of BATCHES on
# fresh roots, with the run's default workers and threads (or WORKERS / THREADS), REPEAT
# rounds. Prints the machine load first (`uptime`), then per run the wall and CPU time,
# tasks/s and the speed-up over --batch 1 of the same round.
# Not a test: timings are benchmark results.
#
# usage: scripts/bench_batch.sh                     (builds the release binary first)
#        BIN=target/debug/synthsweep BATCHES="4 8" ITERS=100 scripts/bench_batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  echo "bench_batch: building synthsweep (release)"
  cargo build --release --quiet -p synthsweep
  BIN=target/release/synthsweep
fi
BATCHES="${BATCHES:-4 8}"
ITERS="${ITERS:-100}"
REPEAT="${REPEAT:-2}"
EXTRA=()
[ -n "${WORKERS:-}" ] && EXTRA+=(--workers "$WORKERS")
[ -n "${THREADS:-}" ] && EXTRA+=(--threads "$THREADS")
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp -r sweeps/images "$WORK/images"

cat > "$WORK/mad.toml" <<EOF
name = "bench-batch-mad"
synth = "mad"
repeats = 2
[params]
max_iter = $ITERS
initial_noise = 0.1
[grid]
image = "images/*.pgm"
optimized_metric = [{ name = "mse" }, { name = "ssim_distance" }]
reference_metric = [{ name = "mse" }, { name = "ssim_distance" }]
minmax = ["min", "max"]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
EOF

cat > "$WORK/metamer.toml" <<EOF
name = "bench-batch-metamer"
synth = "metamer"
repeats = 4
[params]
max_iter = $ITERS
stop_criterion = 0.0
[grid]
image = "images/*.pgm"
model = [{ name = "luminance_contrast_gain_control", kernel_size = 31 }, { name = "gaussian", kernel_size = 31 }]
EOF

echo "bench_batch: $(nproc) cores; load: $(uptime)"
echo "bench_batch: binary $BIN; $ITERS iterations per task; ${EXTRA[*]:-default workers and threads}"

# "wall cpu" seconds of one run of spec $1 with --batch $2 on a fresh root (cpu: user +
# system time of the process; on a machine shared with other work, wall time varies with
# their load much more than CPU time does).
run_once() {
  local root="$WORK/out-$RANDOM-$RANDOM"
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" \
    "$BIN" -q run "$WORK/$1.toml" --out "$root" --batch "$2" "${EXTRA[@]}" >/dev/null 2>&1
  rm -rf "$root"
  awk '{printf "%.3f %.3f\n", $1, $2 + $3}' "$WORK/time"
}

for study in mad metamer; do
  tasks=$("$BIN" plan "$WORK/$study.toml" --no-calibrate --json | wc -l)
  for round in $(seq "$REPEAT"); do
    base_wall="" base_cpu=""
    for n in 1 $BATCHES; do
      read -r wall cpu < <(run_once "$study" "$n")
      [ -z "$base_wall" ] && base_wall=$wall && base_cpu=$cpu
      awk -v s="$study" -v t="$tasks" -v n="$n" -v r="$round" -v w="$wall" -v c="$cpu" \
        -v bw="$base_wall" -v bc="$base_cpu" 'BEGIN{
        printf "%s (round %d): %d tasks, --batch %d: wall %.2f s = %.2f tasks/s (x%.2f), cpu %.2f s = %.2f tasks/cpu-s (x%.2f)\n",
          s, r, t, n, w, t / w, bw / w, c, t / c, bc / c }'
    done
  done
done
echo "bench_batch: load after: $(uptime)"
