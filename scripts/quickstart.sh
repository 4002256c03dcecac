#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the quickstart: the sample images under
# several models and metrics (until the sweep engine lands, this is synthsweep's main job).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "quickstart: building synthsweep (release; the first build takes a few minutes)"
cargo build --release --quiet -p synthsweep
B=target/release/synthsweep
OUT=results/quickstart
mkdir -p "$OUT"
for img in sweeps/images/*.pgm; do
  for metric in '{"name":"mse"}' '{"name":"model_distance","model":{"name":"on_off","pretrained":true}}'; do
    printf '%-36s %-80s ' "$(basename "$img") vs einstein_64.pgm" "$metric"
    "$B" eval metric --metric "$metric" "$img" sweeps/images/einstein_64.pgm
  done
done
"$B" eval model --model '{"name":"on_off","pretrained":true}' --image sweeps/images/einstein_64.pgm --out "$OUT/on_off_einstein.npz"
echo "quickstart: representations in $OUT/"
