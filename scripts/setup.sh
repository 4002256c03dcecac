#!/usr/bin/env bash
# Sets up synthsweep on a fresh machine (Rust toolchain + python3 + pip): a project-local
# venv (.venv) holding torch==2.13.0, whose libtorch tch links against, and the Python
# packages the tests use; then `.libtorch`, the link that .cargo/config.toml points
# LIBTORCH at. Idempotent: a second run only checks a stamp and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
REQ=scripts/requirements.txt
STAMP=.venv/.synthsweep-requirements

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv .venv
fi
if ! cmp -s "$REQ" "$STAMP"; then
  echo "setup: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')(first time: about 1-2 minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$REQ"
  cp "$REQ" "$STAMP"
fi
TORCH_DIR="$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
ln -sfn "$TORCH_DIR" .libtorch
TORCH_VERSION="$(.venv/bin/python -c 'import torch; print(torch.__version__)')"
case "$TORCH_VERSION" in
  2.13.0*) ;;
  *) echo "setup: .venv has torch $TORCH_VERSION but tch 0.26 needs 2.13.0; remove .venv and rerun" >&2; exit 1 ;;
esac
echo "setup: libtorch $TORCH_VERSION at .libtorch -> $TORCH_DIR"
