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
