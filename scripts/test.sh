#!/usr/bin/env bash
# Sets everything up and runs every check CI runs: formatting, clippy (warnings are
# errors) and the whole test suite (unit, parity with plenoptic's fixtures, CLI, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== Slurm on localhost (tests/slurm/run.sh)"
if [ "$(id -u)" = 0 ]; then
  SYNTHSWEEP_BIN="$PWD/target/debug/synthsweep" bash tests/slurm/run.sh
else
  echo "SKIPPED: the Slurm tests need root (they install and start slurm-wlm, munge and the daemons)"
fi
