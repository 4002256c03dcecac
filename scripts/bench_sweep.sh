#!/usr/bin/env bash
# The sweep benchmark: the same 32-task MAD study (64 px, 100 iterations) with synthsweep and
# with plenoptic 1.1.0 in a plain Python loop on the same cores; prints tasks/s and the ratio
# (scripts/bench_sweep.py). Creates .venv-bench like scripts/bench_vs_plenoptic.sh and builds
# synthsweep in release. Arguments go to the Python script, e.g. `--workers 1 --threads 2`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-bench
REQS="plenoptic==1.1.0 torch==2.13.0 numpy<2.4"
STAMP="$VENV/.synthsweep-bench-requirements"
if [ ! -x "$VENV/bin/python" ]; then
  echo "bench: creating $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$REQS" ]; then
  echo "bench: installing $REQS into $VENV (first time: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet $REQS
  echo "$REQS" > "$STAMP"
fi
"$VENV/bin/python" -c 'import polars' 2>/dev/null || "$VENV/bin/python" -m pip install --quiet polars
bash scripts/setup.sh
echo "bench: building synthsweep (release)"
cargo build --release --quiet -p synthsweep
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
exec "$VENV/bin/python" scripts/bench_sweep.py --bin "$TARGET_DIR/release/synthsweep" "$@"
