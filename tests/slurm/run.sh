#!/usr/bin/env bash
# synthsweep on a real Slurm cluster on localhost (started and stopped here, see cluster.sh;
# needs root, installs slurm-wlm and munge with apt-get when missing):
#   (b1) `synthsweep slurm --array` on a small sweep: the array's results equal a local run;
#   (b2) one job whose srun starts 2 processes (only when `synthsweep run --help` shows
#        --processes, i.e. multi-process execution is there; SKIPPED otherwise);
#   (d)  a job told to checkpoint mid-run (`scancel --signal=USR1`): it exits 75, requeues
#        itself, resumes from the checkpoint and ends equal to an uninterrupted run;
#   (e)  many writers: one array submitted twice at once (10 elements, --batch-tasks 1),
#        3 rounds, each equal to a local run, with a polars reader that never sees a task twice.
# usage: tests/slurm/run.sh   (SYNTHSWEEP_BIN overrides target/debug/synthsweep)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
PY="${PYTHON:-$REPO/.venv/bin/python}"
START=$SECONDS

if [ -z "${SYNTHSWEEP_BIN:-}" ]; then
  cargo build -q -p synthsweep
  SYNTHSWEEP_BIN="$REPO/target/debug/synthsweep"
fi
BIN="$SYNTHSWEEP_BIN"
[ -x "$BIN" ] || { echo "no synthsweep binary at $BIN" >&2; exit 1; }

source tests/slurm/cluster.sh
W="$(mktemp -d /tmp/synthsweep-slurm-test.XXXXXX)"
cleanup() { cluster_down || true; [ -n "${KEEP_SLURM_TEST:-}" ] && echo "kept $W" || rm -rf "$W"; }
trap cleanup EXIT
cluster_up

passed=0; failed=0; skipped=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# A 24x24 8-bit PGM with some structure.
pgm() {
  "$PY" - "$1" "$2" <<'EOF'
import sys
path, k = sys.argv[1], int(sys.argv[2])
px = bytes((x * 7 + y * k + (x * y) % 17) % 256 for y in range(24) for x in range(24))
open(path, "wb").write(b"P5\n24 24\n255\n" + px)
EOF
}
mkdir -p "$W/images"
pgm "$W/images/a.pgm" 13
pgm "$W/images/b.pgm" 5

# Job state and exit code of job $1 (from scontrol, kept MinJobAge seconds after the end).
job_state() {
  local j; j="$(scontrol show job "$1" -o)"
  for k in JobState ExitCode Restarts; do grep -oE "$k=[A-Z_0-9:]+" <<< "$j" | head -1 | tr '\n' ' '; done
}

# ---- (b1) job array: 6 metamer tasks over MaxArraySize = 5 elements ----------------------
cat > "$W/array.toml" <<'EOF'
name = "slurm-array"
synth = "metamer"
[params]
max_iter = 25
store_progress = 10
optimizer = { name = "adam", lr = 0.01 }
[grid]
image = "images"
model = [{ name = "gaussian", kernel_size = 5 }]
seed = [0, 1, 2]
EOF
echo "== (b1) job array"
"$BIN" slurm "$W/array.toml" --array --time 5 --out "$W/array" --dry-run > "$W/array-dry.sbatch" 2> "$W/array-dry.err"
grep -q -- '--array=0-4' "$W/array-dry.sbatch" && grep -q 'MaxArraySize = 5' "$W/array-dry.err" \
  && ok "array sized 6 tasks -> 5 elements (MaxArraySize)" \
  || { fail "array sizing"; cat "$W/array-dry.sbatch" "$W/array-dry.err"; }
id=$("$BIN" slurm "$W/array.toml" --array --time 5 --out "$W/array" -- --workers 1 2> "$W/array-submit.err")
echo "submitted array job $id"
ls "$W/array/_slurm/"slurm-array-*.sbatch >/dev/null && ok "script kept in ROOT/_slurm" || fail "no script in ROOT/_slurm"
wait_job "$id" 240
"$BIN" run "$W/array.toml" --out "$W/array-local" --workers 1 > /dev/null 2>&1
states="$(for i in 0 1 2 3 4; do job_state "${id}_$i"; echo; done)"
if [ "$(grep -c 'JobState=COMPLETED ExitCode=0:0' <<< "$states")" = 5 ]; then
  ok "5 array elements COMPLETED 0:0"
else
  fail "array elements: $states"; tail -n 20 "$W/array/_slurm/"*.out
fi
grep -h "^sweep" "$W/array/_slurm/"*.out | sed 's/^/  /'
if "$PY" tests/slurm/compare.py "$W/array" "$W/array-local" --expect-tasks 6; then
  ok "array results equal a local run"
else
  fail "array results differ from a local run"
fi

# ---- (b2) one job, srun -n 2 -----------------------------------------------------------
echo "== (b2) multi-process job (srun, 2 processes)"
if "$BIN" run --help | grep -q -- '--processes'; then
  id=$("$BIN" slurm "$W/array.toml" --nodes 1 --tasks-per-node 2 --time 5 --out "$W/multi" -- --workers 1 2>/dev/null)
  echo "submitted job $id"
  wait_job "$id" 240
  st="$(job_state "$id")"
  [[ "$st" == *"JobState=COMPLETED ExitCode=0:0"* ]] && ok "2-process job COMPLETED" \
    || { fail "2-process job: $st"; tail -n 30 "$W/multi/_slurm/"*.out; }
  if "$PY" tests/slurm/compare.py "$W/multi" "$W/array-local" --expect-tasks 6; then
    ok "2-process results equal a local run"
  else
    fail "2-process results differ from a local run"
  fi
else
  echo "SKIPPED (b2): \`synthsweep run --help\` shows no --processes (multi-process execution is not in this build)"
  skipped=$((skipped + 1))
fi

# ---- (d) preemption: USR1 mid-run, requeue, resume ----------------------------------------
cat > "$W/preempt.toml" <<'EOF'
name = "slurm-preempt"
synth = "mad"
[params]
image = "images/a.pgm"
max_iter = 3000
stop_criterion = 0.0
store_progress = 500
optimizer = { name = "adam", lr = 0.005 }
[grid]
optimized_metric = [{ name = "mse" }]
reference_metric = [{ name = "ssim_distance" }]
minmax = ["max"]
EOF
echo "== (d) preemption and requeue"
id=$("$BIN" slurm "$W/preempt.toml" --time 10 --out "$W/preempt" -- --workers 1 2>/dev/null)
log="$W/preempt/_slurm/slurm-preempt-$id.out"
echo "submitted job $id (log $log)"
for _ in $(seq 600); do grep -q '^sweep' "$log" 2>/dev/null && break; sleep 0.2; done
sleep 1.5
scancel --signal=USR1 "$id" || { fail "USR1 not delivered (job $id: $(job_state "$id"))"; sed 's/^/  | /' "$log"; }
echo "sent USR1 to the steps of job $id"
for _ in $(seq 1200); do
  st="$(job_state "$id")"
  if [[ "$st" =~ JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT) ]]; then
    # done, unless it is about to be requeued
    [[ "$st" != *"Restarts=0"* ]] || ! grep -q "requeueing" "$log" && break
  fi
  sleep 0.25
done
echo "job $id: $st"
[[ "$st" == *"JobState=COMPLETED ExitCode=0:0 "* && "$st" == *"Restarts=1"* ]] \
  && ok "job requeued once and COMPLETED" || fail "job state: $st"
grep -q "checkpoint saved to $W/preempt/_checkpoints/" "$log" && ok "checkpoint saved on USR1" || fail "no checkpoint line"
grep -q "requeueing job $id" "$log" && ok "script requeued the job on exit 75" || fail "no requeue line"
grep -q "resuming from checkpoint" "$log" && ok "requeued run resumed from the checkpoint" || fail "no resume line"
[ -z "$(ls -A "$W/preempt/_checkpoints" 2>/dev/null)" ] && ok "checkpoint deleted after commit" || fail "checkpoint left behind"
sed 's/^/  | /' "$log"
"$BIN" run "$W/preempt.toml" --out "$W/preempt-local" --workers 1 > /dev/null 2>&1
if "$PY" tests/slurm/compare.py "$W/preempt" "$W/preempt-local" --expect-tasks 1; then
  ok "resumed result equals an uninterrupted run"
else
  fail "resumed result differs from an uninterrupted run"
fi

# ---- (e) many writers: one array submitted twice at once, 3 rounds -----------------------
# Two copies of a 5-element array (10 writers on one root, up to 8 running together) with
# --batch-tasks 1, while a polars reader scans `tasks` over and over: each round must end
# with every task once, equal to a local run, and the reader must never see a task twice.
cat > "$W/many.toml" <<'EOF'
name = "slurm-many"
synth = "metamer"
[params]
max_iter = 20
[grid]
image = "images"
model = [{ name = "gaussian", kernel_size = 5 }]
seed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
EOF
echo "== (e) many writers: an array submitted twice at once, 3 rounds"
"$BIN" run "$W/many.toml" --out "$W/many-local" --workers 1 > /dev/null 2>&1
for round in 1 2 3; do
  root="$W/many-$round"
  # The reader starts first (importing polars takes a while) and learns the job ids from
  # a file written once both arrays are submitted.
  "$PY" - "$root" "$W/many-jobs-$round" > "$W/many-reader-$round.txt" 2>&1 <<'EOF' &
import glob, os, subprocess, sys, time
import polars as pl
root, jobs_file = sys.argv[1], sys.argv[2]
looks = twice = 0
while True:
    running = "?"
    if os.path.exists(jobs_file):
        jobs = open(jobs_file).read().split()
        running = subprocess.run(["squeue", "-h", "-j", ",".join(jobs)], capture_output=True, text=True).stdout.strip()
    if glob.glob(f"{root}/tasks/*.parquet"):
        try:
            ids = pl.scan_parquet(f"{root}/tasks/*.parquet").select("task_id").collect()["task_id"]
            looks += 1
            if ids.n_unique() != len(ids):
                twice += 1
                print(f"a task twice: {len(ids)} rows, {ids.n_unique()} ids")
        except Exception as e:  # a file gone between listing and reading: look again
            print(f"look failed: {e}")
    if not running:
        break
    time.sleep(0.05)
print(f"reader: {looks} looks, {twice} with a task twice")
EOF
  reader=$!
  a=$("$BIN" slurm "$W/many.toml" --array --time 5 --out "$root" -- --workers 1 --batch-tasks 1 2>/dev/null)
  b=$("$BIN" slurm "$W/many.toml" --array --time 5 --out "$root" -- --workers 1 --batch-tasks 1 2>/dev/null)
  echo "$a $b" > "$W/many-jobs-$round"
  wait_job "$a" 300; wait_job "$b" 300
  wait "$reader" || true
  states="$(for j in $a $b; do for i in 0 1 2 3 4; do job_state "${j}_$i"; echo; done; done)"
  if [ "$(grep -c 'JobState=COMPLETED ExitCode=0:0' <<< "$states")" = 10 ]; then
    ok "round $round: 10 elements COMPLETED 0:0"
  else
    fail "round $round: $states"; tail -n 20 "$root/_slurm/"*.out
  fi
  if "$PY" tests/slurm/compare.py "$root" "$W/many-local" --expect-tasks 24; then
    ok "round $round: every task once, equal to a local run"
  else
    fail "round $round: results differ from a local run"
  fi
  tail -n 1 "$W/many-reader-$round.txt" | sed 's/^/  /'
  if grep -qE "reader: ([3-9]|[1-9][0-9]+) looks, 0 with a task twice" "$W/many-reader-$round.txt"; then
    ok "round $round: the reader never saw a task twice"
  else
    fail "round $round: reader: $(cat "$W/many-reader-$round.txt")"
  fi
done

echo "slurm tests took $((SECONDS - START)) s"
echo "slurm: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
