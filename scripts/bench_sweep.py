#!/usr/bin/env python3
"""The same small study run two ways on the same cores: synthsweep (`synthsweep run`, its
default workers x threads split) and plenoptic 1.1.0 in a plain Python loop (one process,
torch's default intra-op threads = all cores). Prints tasks/s for both and the ratio.

The study: MAD competition, MSE vs SSIM (1 - ssim), both ways, min and max, on two 64 px
sample images, 4 seeds: 2 x 2 x 2 x 4 = 32 tasks of 100 iterations with the same stop rule
on both sides (plenoptic's defaults: stop_criterion 1e-4 over 5 iterations) and the same
initial noise and seeds, so both run the same trajectories.

Usually run through scripts/bench_sweep.sh (venv + release build). Directly:
`python scripts/bench_sweep.py --bin target/release/synthsweep`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ["einstein_64.pgm", "curie_64.pgm"]
SEEDS = [0, 1, 2, 3]
PAIRS = [("mse", "ssim_distance"), ("ssim_distance", "mse")]
MINMAX = ["min", "max"]


def spec_text(images: list[Path], max_iter: int) -> str:
    imgs = ", ".join(json.dumps(str(p)) for p in images)
    return f"""name = "bench-sweep"
synth = "mad"
[params]
max_iter = {max_iter}
initial_noise = 0.1
[grid]
image = [{imgs}]
seed = {SEEDS}
minmax = ["min", "max"]
[[zip]]
optimized_metric = [{{ name = "mse" }}, {{ name = "ssim_distance" }}]
reference_metric = [{{ name = "ssim_distance" }}, {{ name = "mse" }}]
"""


def read_pgm(path: Path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_vs_plenoptic import read_pgm as rp  # noqa: E402

    return rp(path)


def run_plenoptic(images: list[Path], max_iter: int) -> tuple[float, int, int]:
    import plenoptic as po
    import torch

    ssim_distance = lambda a, b: 1 - po.metric.ssim(a, b)  # noqa: E731
    metrics = {"mse": po.metric.mse, "ssim_distance": ssim_distance}
    import contextlib
    import io
    import warnings

    warnings.filterwarnings("ignore")  # plenoptic's "image range outside [0, 1]" per iteration
    loaded = [read_pgm(p) for p in images]
    quiet = contextlib.redirect_stderr(io.StringIO())  # its tqdm bar
    quiet.__enter__()
    start = time.perf_counter()
    tasks = iterations = 0
    for img in loaded:
        for seed in SEEDS:
            for minmax in MINMAX:
                for opt, ref in PAIRS:
                    torch.manual_seed(seed)
                    mad = po.synth.MADCompetition(img, metrics[opt], metrics[ref], minmax,
                                                  initial_noise=0.1)
                    mad.synthesize(max_iter=max_iter)
                    tasks += 1
                    iterations += len(mad.losses)
    wall = time.perf_counter() - start
    quiet.__exit__(None, None, None)
    return wall, tasks, iterations


def run_synthsweep(binary: Path, images: list[Path], max_iter: int, args) -> tuple[float, int, int]:
    work = Path(tempfile.mkdtemp(prefix="synthsweep-bench-"))
    try:
        spec = work / "bench.toml"
        spec.write_text(spec_text(images, max_iter))
        cmd = [str(binary), "run", str(spec), "--out", str(work / "out")]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        import polars as pl

        tasks = pl.read_parquet(str(work / "out" / "tasks" / "**" / "*.parquet"))
        done = tasks.filter(pl.col("status") == "done").height
        return wall, done, int(tasks["iterations"].sum())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", type=Path, required=True, help="the synthsweep binary")
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--workers", type=int, help="synthsweep --workers (default: its own)")
    p.add_argument("--threads", type=int, help="synthsweep --threads (default: its own)")
    p.add_argument("--skip-plenoptic", action="store_true")
    args = p.parse_args()
    images = [ROOT / "sweeps" / "images" / n for n in IMAGES]
    n_tasks = len(images) * len(SEEDS) * len(MINMAX) * len(PAIRS)
    print(f"study: {n_tasks} MAD tasks (mse vs ssim, min/max, {len(images)} images at 64 px, "
          f"{len(SEEDS)} seeds), max_iter {args.max_iter}, on {os.cpu_count()} cores")
    s_wall, s_tasks, s_iters = run_synthsweep(args.bin, images, args.max_iter, args)
    split = f"--workers {args.workers or 'default'} --threads {args.threads or 'default'}"
    print(f"synthsweep ({split}): {s_tasks} tasks, {s_iters} iterations in {s_wall:.2f} s "
          f"= {s_tasks / s_wall:.2f} tasks/s (whole command: start-up, planning, writing included)")
    if args.skip_plenoptic:
        return
    p_wall, p_tasks, p_iters = run_plenoptic(images, args.max_iter)
    import torch

    print(f"plenoptic loop (torch threads {torch.get_num_threads()}): {p_tasks} tasks, "
          f"{p_iters} iterations in {p_wall:.2f} s = {p_tasks / p_wall:.2f} tasks/s "
          f"(loop only: imports and start-up not counted)")
    ratio = (s_tasks / s_wall) / (p_tasks / p_wall)
    print(f"ratio synthsweep / plenoptic: {ratio:.2f}x tasks/s (goal >= 2x)")
    if s_iters != p_iters:
        print(f"note: iteration counts differ ({s_iters} vs {p_iters}): stop rules fired differently")


if __name__ == "__main__":
    main()
