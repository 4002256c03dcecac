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
# The report's browser test opens the report in Debian's headless Chromium; as root the set-up
# installs it (about 1-2 minutes the first time), otherwise that one check says SKIPPED.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing chromium for the report's browser test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium: the report's browser check will be SKIPPED"
fi
echo "== cargo test"
cargo test --workspace
echo "== Slurm on localhost (tests/slurm/run.sh)"
if [ "$(id -u)" = 0 ]; then
  SYNTHSWEEP_BIN="$PWD/target/debug/synthsweep" bash tests/slurm/run.sh
else
  echo "SKIPPED: the Slurm tests need root (they install and start slurm-wlm, munge and the daemons)"
fi
