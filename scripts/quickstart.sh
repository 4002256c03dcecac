#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs synthsweep's main job on the built-in
# default: the quickstart sweep (sweeps/quickstart.toml, a MAD competition between MSE and
# SSIM on three sample images, 12 tasks) on in-process workers, results on local disk.
# Then summarizes the sweep, writes the synthesized images as PNG files and shows how to read
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

# The synthesized images, as PNG files named by image, optimized metric and min/max.
.venv/bin/python - "$OUT" <<'PY'
import json, pathlib, sys
import polars as pl
root = pathlib.Path(sys.argv[1])
tasks = pl.read_parquet(root / "tasks" / "**" / "*.parquet").filter(pl.col("status") == "done")
images = pl.read_parquet(root / "images" / "**" / "*.parquet").filter(pl.col("role") == "mad_image")
rows = images.join(tasks.select("task_id", "image", "optimized_metric", "minmax"), on="task_id")
out = root / "png"
out.mkdir(exist_ok=True)
for r in rows.iter_rows(named=True):
    metric = json.loads(r["optimized_metric"])["name"]
    name = f"{pathlib.Path(r['image']).stem}_{r['minmax']}_{metric}.png"
    (out / name).write_bytes(r["png"])
print(f"quickstart: {rows.height} MAD images as PNG in {out}/")
PY
echo "quickstart: results in $OUT/ (tables tasks, losses, images as Parquet datasets)"
echo "look at them with polars:"
echo "  .venv/bin/python -c \"import polars as pl; print(pl.scan_parquet('$OUT/losses/**/*.parquet').group_by('task_id').agg(pl.col('loss').last()).collect())\""
