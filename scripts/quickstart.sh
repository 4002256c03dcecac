#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs synthsweep's main job on the built-in
# default: the quickstart sweep (sweeps/quickstart.toml, a MAD competition between MSE and
# SSIM on three sample images, 12 tasks) on in-process workers, results on local disk.
# Then summarizes the sweep, writes the HTML report (printing its path) and shows how to read
# the tables. Re-running resumes: committed tasks are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "quickstart: building synthsweep (release; the first build takes a few minutes)"
cargo build --release --quiet -p synthsweep
B=target/release/synthsweep
OUT=results/quickstart

"$B" plan sweeps/quickstart.toml --no-calibrate
"$B" run sweeps/quickstart.toml --out "$OUT"
echo
"$B" status "$OUT"

# The report: the MAD images of each image in plenoptic's 2x2 layout, loss curves, pixel
# histograms, results against the grid and a page per task, as a static site (no server).
"$B" report "$OUT"
echo "quickstart: results in $OUT/ (tables tasks, losses, images as Parquet datasets), report in $OUT/_report/index.html"
echo "look at them with polars:"
echo "  .venv/bin/python -c \"import polars as pl; print(pl.scan_parquet('$OUT/losses/**/*.parquet').group_by('task_id').agg(pl.col('loss').last()).collect())\""
