#!/usr/bin/env python3
"""Times the same syntheses in plenoptic 1.1 and in synthsweep on this machine, one thread
each, and prints the ratio per case.

Each case runs in a fresh process per side: plenoptic in this script's `--worker` mode,
synthsweep in the `bench_synth` example (crates/synth/examples/bench_synth.rs). Both build the
model or metrics first (not timed), run a short warm-up task, then time REPEATS tasks, each
constructing the synthesis object and running `synthesize` for ITERATIONS steps with every
stop rule switched off, and report the median. The images (einstein, and curie as the
geodesic's second anchor, at 256 px and block-mean downsampled to 64 px) are written as 8-bit
PGM files from plenoptic's own data, so both sides read the same pixels.

Usually run through scripts/bench_vs_plenoptic.sh, which creates the venv and builds the
Rust side. Directly: `python scripts/bench_vs_plenoptic.py --bin PATH/TO/bench_synth`.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# case, size, iterations, repeats. Iterations are the same on both sides; for the
# eigendistortion they are power iterations per phase (top, then bottom).
PLAN = [
    ("mad_mse_ssim", 64, 100, 5),
    ("metamer_lgc", 64, 100, 5),
    ("eigen_power_lgc", 64, 20, 3),
    ("geodesic_lgc", 64, 50, 3),
    ("simple_metamer_gaussian", 64, 100, 5),
    ("mad_mse_ssim", 256, 50, 3),
    ("metamer_lgc", 256, 50, 3),
    ("metamer_ps", 256, 50, 3),
    ("eigen_power_lgc", 256, 5, 3),
    ("simple_metamer_gaussian", 256, 50, 3),
]
CASES = sorted({c for c, *_ in PLAN})
GOALS = {64: 0.5, 256: 0.8}
WARMUP_ITERS = 2
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# ---------------------------------------------------------------------------------------
# Images


def read_pgm(path: Path):
    """An 8-bit binary PGM as a (1, 1, H, W) float32 tensor, value k -> k / 255."""
    import numpy as np
    import torch

    data = Path(path).read_bytes()
    tokens, pos = [], 0
    while len(tokens) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        tokens.append(data[pos:end])
        pos = end
    magic, w, h, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic != b"P5" or maxval != 255:
        raise ValueError(f"{path}: expected an 8-bit binary PGM (P5, maxval 255)")
    pixels = np.frombuffer(data[pos + 1:pos + 1 + w * h], dtype=np.uint8).reshape(h, w)
    return torch.from_numpy(pixels.astype(np.float32) / np.float32(255)).reshape(1, 1, h, w)


def write_pgm(path: Path, pixels) -> None:
    """Writes a (H, W) uint8 array as a binary PGM."""
    h, w = pixels.shape
    Path(path).write_bytes(f"P5\n{w} {h}\n255\n".encode() + pixels.tobytes())


def make_images(out_dir: Path) -> dict[str, Path]:
    """einstein and curie from plenoptic's data at 256 px, and 4x4 block means at 64 px."""
    import numpy as np
    import plenoptic as po
    import torch

    paths = {}
    for name, load in (("einstein", po.data.einstein), ("curie", po.data.curie)):
        img = load().to(torch.float64)[0, 0]
        if tuple(img.shape) != (256, 256):
            raise ValueError(f"plenoptic's {name} is {tuple(img.shape)}, expected 256 x 256")
        big = (img * 255).round().clamp(0, 255).numpy().astype(np.uint8)
        small = big.astype(np.float64).reshape(64, 4, 64, 4).mean(axis=(1, 3))
        small = np.round(small).clip(0, 255).astype(np.uint8)
        for size, pix in ((256, big), (64, small)):
            p = out_dir / f"{name}_{size}.pgm"
            write_pgm(p, pix)
            paths[f"{name}_{size}"] = p
    return paths


# ---------------------------------------------------------------------------------------
# The plenoptic side (worker mode)


def build_plenoptic(case: str, image):
    """The model or metrics of a case, built once (not timed)."""
    import plenoptic as po

    if case == "mad_mse_ssim":
        return po.metric.mse, lambda a, b: 1 - po.metric.ssim(a, b)
    if case in ("metamer_lgc", "eigen_power_lgc", "geodesic_lgc"):
        model = po.simul.LuminanceGainControl((31, 31), pretrained=True, cache_filt=True)
    elif case == "metamer_ps":
        model = po.simul.PortillaSimoncelli(image.shape[-2:], n_scales=4)
    elif case == "simple_metamer_gaussian":
        model = po.simul.Gaussian(11, std=3.0, cache_filt=True)
    else:
        raise ValueError(f"unknown case {case}")
    po.tools.remove_grad(model)
    model.eval()
    return model


def plenoptic_task(case: str, built, image, image_b, iterations: int):
    """One task: construct the synthesis object and synthesize. Returns (iterations run,
    last loss or top eigenvalue)."""
    import plenoptic as po
    from plenoptic.synthesize import eigendistortion as eig_module

    if case == "mad_mse_ssim":
        optimized, reference = built
        mad = po.synth.MADCompetition(image, optimized, reference, "min")
        mad.synthesize(max_iter=iterations, stop_criterion=0)
        return len(mad.losses), mad.losses[-1]
    if case in ("metamer_lgc", "metamer_ps"):
        met = po.synth.Metamer(image, built)
        met.synthesize(max_iter=iterations, stop_criterion=0)
        return len(met.losses), met.losses[-1]
    if case == "eigen_power_lgc":
        # Count power iterations: one eigenvalue estimate per phase before the loop, then
        # one per iteration.
        calls = [0]
        original = eig_module.fisher_info_matrix_eigenvalue

        def counted(*args, **kwargs):
            calls[0] += 1
            return original(*args, **kwargs)

        eig_module.fisher_info_matrix_eigenvalue = counted
        try:
            eig = po.synth.Eigendistortion(image, built)
            eig.synthesize(method="power", k=1, max_iter=iterations, stop_criterion=0)
        finally:
            eig_module.fisher_info_matrix_eigenvalue = original
        return calls[0] - 2, float(eig.eigenvalues[0])
    if case == "geodesic_lgc":
        geo = po.synth.Geodesic(image, image_b, built, n_steps=10)
        geo.synthesize(max_iter=iterations, stop_criterion=0)
        return len(geo.losses), geo.losses[-1]
    if case == "simple_metamer_gaussian":
        met = po.synth.SimpleMetamer(image, built)
        met.synthesize(max_iter=iterations)
        return len(met.losses), float(met.losses[-1])
    raise ValueError(f"unknown case {case}")


def worker(args) -> None:
    import torch
    import plenoptic as po
    import warnings

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    warnings.filterwarnings("ignore")
    image = read_pgm(args.image)
    image_b = read_pgm(args.image_b) if args.image_b else None
    built = build_plenoptic(args.case, image)
    times, result = [], None
    # plenoptic prints (eigendistortion, geodesic) and draws progress bars: keep stdout for
    # the JSON line; stderr is discarded by the parent.
    with contextlib.redirect_stdout(io.StringIO()):
        if args.warmup_iters > 0:
            torch.manual_seed(0)
            plenoptic_task(args.case, built, image, image_b, args.warmup_iters)
        for _ in range(args.repeats):
            torch.manual_seed(0)
            start = time.perf_counter()
            result = plenoptic_task(args.case, built, image, image_b, args.iterations)
            times.append(time.perf_counter() - start)
    print(json.dumps({
        "side": "plenoptic",
        "plenoptic_version": po.__version__,
        "torch_version": torch.__version__,
        "case": args.case,
        "image": str(args.image),
        "image_b": str(args.image_b) if args.image_b else None,
        "size": list(image.shape),
        "iterations": args.iterations,
        "repeats": args.repeats,
        "warmup_iters": args.warmup_iters,
        "threads": torch.get_num_threads(),
        "times_s": times,
        "median_s": statistics.median(times),
        "iterations_run": result[0],
        "last_value": float(result[1]),
    }))


# ---------------------------------------------------------------------------------------
# Orchestration


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_json(cmd: list[str], timeout: float) -> dict:
    env = {**os.environ, **THREAD_ENV}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-4000:]}")
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no JSON:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return json.loads(lines[-1])


def side_commands(bin_path: Path, case: str, size: int, images: dict[str, Path], iterations: int,
                  repeats: int) -> tuple[list[str], list[str]]:
    """The plenoptic worker's and synthsweep's command lines for one case."""
    image = str(images[f"einstein_{size}"])
    image_b = ["--image-b", str(images[f"curie_{size}"])] if case == "geodesic_lgc" else []
    warmup = ["--warmup-iters", str(WARMUP_ITERS)]
    py = [sys.executable, __file__, "--worker", "--case", case, "--image", image,
          "--iterations", str(iterations), "--repeats", str(repeats)] + image_b + warmup
    rs = [str(bin_path), case, image, str(iterations), str(repeats)] + image_b + warmup
    return py, rs


def run_case(py_cmd: list[str], rs_cmd: list[str], rounds: int, timeout: float) -> tuple[dict, dict]:
    """Runs the two sides alternately `rounds` times and pools each side's timings."""
    results: dict[str, list[dict]] = {"plenoptic": [], "synthsweep": []}
    for _ in range(rounds):
        results["plenoptic"].append(run_json(py_cmd, timeout))
        results["synthsweep"].append(run_json(rs_cmd, timeout))
    pooled = []
    for runs in results.values():
        out = dict(runs[-1])
        out["times_s"] = [t for r in runs for t in r["times_s"]]
        out["median_s"] = statistics.median(out["times_s"])
        out["repeats"] = len(out["times_s"])
        pooled.append(out)
    return pooled[0], pooled[1]


def fmt_table(rows: list[dict]) -> str:
    header = ["case", "size", "iters", "plenoptic s/task", "synthsweep s/task", "ratio", "goal", "met?"]
    body = []
    for r in rows:
        if r.get("error"):
            body.append([r["case"], str(r["size"]), str(r["iterations"]), "-", "-", "-", f"<= {r['goal']}", "error"])
            continue
        body.append([
            r["case"], str(r["size"]), str(r["iterations"]),
            f"{r['plenoptic_s']:.4f}", f"{r['synthsweep_s']:.4f}", f"{r['ratio']:.3f}",
            f"<= {r['goal']}", "yes" if r["met"] else "NO",
        ])
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, help="the bench_synth example binary (release)")
    ap.add_argument("--out", type=Path, help="write the table and raw timings as JSON here")
    ap.add_argument("--cases", nargs="*", help=f"only these cases ({', '.join(CASES)})")
    ap.add_argument("--sizes", nargs="*", type=int, help="only these sizes (64, 256)")
    ap.add_argument("--repeats", type=int, help="override every case's repeats")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate the two sides this many times per case, pooling the timings "
                         "(evens out a machine whose load changes)")
    ap.add_argument("--iter-scale", type=float, default=1.0,
                    help="multiply every case's iterations (e.g. 0.2 for a quick look)")
    ap.add_argument("--image-dir", type=Path,
                    help="use einstein_{64,256}.pgm and curie_{64,256}.pgm from here instead of "
                         "writing them from plenoptic's data")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per side per case")
    # worker mode (internal)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--image-b", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--iterations", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--warmup-iters", type=int, default=WARMUP_ITERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.bin is None or not args.bin.exists():
        ap.error("--bin must name the built bench_synth binary")

    unknown = set(args.cases or []) - set(CASES)
    if unknown:
        ap.error(f"unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")
    plan = [p for p in PLAN
            if (not args.cases or p[0] in args.cases) and (not args.sizes or p[1] in args.sizes)]
    if not plan:
        ap.error("no case left to run")
    with tempfile.TemporaryDirectory(prefix="synthsweep-bench-") as tmp:
        images = ({f"{n}_{s}": args.image_dir / f"{n}_{s}.pgm" for n in ("einstein", "curie") for s in (64, 256)}
                  if args.image_dir else make_images(Path(tmp)))
        rows, started = [], time.perf_counter()
        for case, size, iterations, repeats in plan:
            iterations = max(1, round(iterations * args.iter_scale))
            repeats = args.repeats or repeats
            goal = GOALS[size]
            row = {"case": case, "size": size, "iterations": iterations, "repeats": repeats * args.rounds,
                   "goal": goal}
            py_cmd, rs_cmd = side_commands(args.bin, case, size, images, iterations, repeats)
            print(f"== {case} {size} px, {iterations} iterations x {repeats * args.rounds}", flush=True)
            try:
                py, rs = run_case(py_cmd, rs_cmd, args.rounds, args.timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"   error: {e}", flush=True)
                rows.append({**row, "error": str(e)})
                continue
            ratio = rs["median_s"] / py["median_s"]
            row.update({
                "plenoptic_s": py["median_s"], "synthsweep_s": rs["median_s"], "ratio": ratio,
                "met": ratio <= goal,
                "plenoptic": py, "synthsweep": rs,
            })
            if py["iterations_run"] != rs["iterations_run"]:
                row["warning"] = (f"iterations differ: plenoptic ran {py['iterations_run']}, "
                                  f"synthsweep {rs['iterations_run']}")
            print(f"   plenoptic {py['median_s']:.4f} s, synthsweep {rs['median_s']:.4f} s, "
                  f"ratio {ratio:.3f} (goal <= {goal}); iterations run {py['iterations_run']} / "
                  f"{rs['iterations_run']}; last value {py['last_value']:.4g} / {rs['last_value']:.4g}",
                  flush=True)
            if "warning" in row:
                print(f"   warning: {row['warning']}", flush=True)
            rows.append(row)
        total = time.perf_counter() - started

    print()
    print(f"single thread each; median of repeats; ratio = synthsweep / plenoptic; {total:.0f} s in all")
    print(fmt_table(rows))
    if args.out:
        import torch
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "machine": {"platform": platform.platform(), "processor": cpu_model(),
                        "cpu_count": os.cpu_count(), "python": platform.python_version(),
                        "torch": torch.__version__},
            "goals": {str(k): v for k, v in GOALS.items()},
            "total_s": total,
            "rows": rows,
        }, indent=2) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
