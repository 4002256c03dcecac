#!/usr/bin/env bash
# Times the same syntheses in plenoptic 1.1.0 and in synthsweep on this machine, one thread
# each, and prints the ratio per case (see scripts/bench_vs_plenoptic.py).
#
# Creates .venv-bench (plenoptic==1.1.0, torch==2.13.0, numpy<2.4; a second run only checks a
# stamp), builds the bench_synth example in release, then runs both sides. Arguments go to
# the Python script, e.g. `--out results/bench.json`, `--sizes 64`, `--cases metamer_lgc`,
# `--repeats 3`, `--iter-scale 0.2`, `--rounds 2`.
#
# libtorch for the Rust build: $LIBTORCH if set, else .libtorch (scripts/setup.sh), else the
# torch 2.13.0 inside .venv-bench. $CARGO_TARGET_DIR is honoured.
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

if [ -z "${LIBTORCH:-}" ] && [ ! -e .libtorch ]; then
  LIBTORCH="$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
  export LIBTORCH
fi
echo "bench: building bench_synth (release)"
cargo build --release --quiet -p synthsweep-synth --example bench_synth
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

exec "$VENV/bin/python" scripts/bench_vs_plenoptic.py --bin "$TARGET_DIR/release/examples/bench_synth" "$@"
