#!/usr/bin/env python3
"""What the many-writer bookkeeping (leases, a claim per task) costs on small tasks.

Runs the 3200-task `score` sweep of issue 8 (40 random 16 px images, all ordered pairs x
2 metrics) and the quickstart study with each given synthsweep binary, on a local root
and on a moto S3 server on loopback, and prints the wall time of `synthsweep run`
(median of --repeat runs, each on a fresh root).

usage: .venv/bin/python scripts/bench_claims.py --bin NAME=PATH [--bin NAME=PATH ...]
                                                 [--repeat 3] [--no-s3] [--no-quickstart] [--no-score]
e.g.   --bin before=/work/main/target/release/synthsweep --bin after=target/release/synthsweep
"""
import argparse
import os
import pathlib
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parent.parent


def pgm(path, rng, size=16):
    px = bytes(rng.randrange(256) for _ in range(size * size))
    path.write_bytes(b"P5\n%d %d\n255\n" % (size, size) + px)


def score_spec(work):
    images = work / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(8)
    for i in range(40):
        pgm(images / f"img{i:02d}.pgm", rng)
    spec = work / "score3200.toml"
    spec.write_text(
        'name = "score3200"\nsynth = "score"\n[grid]\n'
        'image_a = "images/*.pgm"\nimage_b = "images/*.pgm"\n'
        'metric = ["mse", "ssim_distance"]\n'
    )
    return spec


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            break
        except Exception:
            time.sleep(0.2)
    req = urllib.request.Request(endpoint + "/bench", method="PUT")
    urllib.request.urlopen(req)
    return proc, endpoint


def run(binary, spec, root, env):
    t = time.perf_counter()
    p = subprocess.run(
        [binary, "run", str(spec), "--out", root],
        cwd=spec.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{binary} run {spec} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-quickstart", action="store_true")
    ap.add_argument("--no-score", action="store_true")
    args = ap.parse_args()
    bins = [b.split("=", 1) for b in args.bin]
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-claims-"))
    specs = [] if args.no_score else [("score 3200 tasks", score_spec(work))]
    if not args.no_quickstart:
        specs.append(("quickstart", REPO / "sweeps/quickstart.toml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    moto = None
    roots = [("local", lambda name: str(work / "out" / name), env)]
    if not args.no_s3:
        moto, endpoint = start_moto()
        s3env = dict(env, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test",
                     AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true")
        roots.append(("moto S3", lambda name: f"s3://bench/{name}", s3env))
    try:
        n = 0
        for what, spec in specs:
            for where, root_of, e in roots:
                for name, binary in bins:
                    walls = []
                    for _ in range(args.repeat):
                        n += 1
                        walls.append(run(binary, spec, root_of(f"r{n}"), e))
                    print(f"{what:18s} {where:8s} {name:8s} median {statistics.median(walls):6.2f} s"
                          f"  (runs: {', '.join(f'{w:.2f}' for w in walls)})", flush=True)
    finally:
        if moto:
            moto.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
