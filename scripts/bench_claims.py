#!/usr/bin/env python3
"""What the many-writer bookkeeping (leases, claim sets, task claims) costs on small tasks.

Runs the 3200-task `score` sweep of issue 8 (40 random 16 px images, all ordered pairs x
2 metrics) and the quickstart study with each given synthsweep binary, on a local root
and on a moto S3 server on loopback, and prints the wall time of `synthsweep run`
(median of --repeat runs, each on a fresh root).

With --requests, it also counts the S3 requests of each run from moto's request log, by
kind (claim set and task claim PUT/GET/DELETE, bulk delete, LIST, lease, clock probe, table files, ...), per
task of the study.

usage: .venv/bin/python scripts/bench_claims.py --bin NAME=PATH [--bin NAME=PATH ...]
                                                 [--repeat 3] [--no-s3] [--no-quickstart] [--no-score]
                                                 [--no-local] [--local-dir DIR] [--requests]
e.g.   --bin before=/work/main/target/release/synthsweep --bin after=target/release/synthsweep
"""
import argparse
import collections
import os
import pathlib
import random
import re
import resource
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


def start_moto(log=None):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
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


# A request line of moto's (werkzeug's) log: "PUT /bucket/key?query HTTP/1.1" 200
REQUEST = re.compile(r'"([A-Z]+) /([^ ?]*)(\?[^ ]*)? HTTP/[0-9.]+" (\d+)')
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours the lines of 4xx answers
TABLES = ("tasks", "losses", "eigen", "images", "scores")


def request_kind(method, path, query, root):
    """What a request of moto's log was for: e.g. 'PUT claim', 'LIST', 'bulk DELETE'."""
    parts = path.split("/")
    if "delete" in query and method == "POST":
        return "bulk DELETE (POST ?delete)"
    if method == "GET" and ("list-type" in query or len(parts) < 2 or parts[1] == ""):
        return "LIST"
    rest = parts[2:] if len(parts) > 2 and parts[1] == root else parts[1:]
    top = rest[0] if rest else ""
    what = {
        "_claims": "task claim",
        "_claimsets": "claim set",
        "_leases": "lease",
        "_clock": "clock probe",
        "_dead": "dead mark",
        "_runs": "run record",
        "_locks": "lock",
        "_txn": "intent",
    }.get(top, "table file" if top in TABLES else top or "?")
    if top == "_leases" and rest[-1].endswith(".ending"):
        what = "ending marker"
    return f"{method} {what}"


def count_requests(log_path, start, root):
    """Requests of moto's log after byte `start` (one run at a time), by kind."""
    counts = collections.Counter()
    with open(log_path, "rb") as f:
        f.seek(start)
        for line in f.read().decode(errors="replace").splitlines():
            m = REQUEST.search(ANSI.sub("", line))
            if not m:
                continue
            method, path, query, _status = m.groups()
            query = query or ""
            counts[request_kind(method, path, query, root)] += 1
    return counts


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(binary, spec, root, env):
    """Wall and CPU (user + system) seconds of one `synthsweep run`."""
    cpu = child_cpu()
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
    return wall, child_cpu() - cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-quickstart", action="store_true")
    ap.add_argument("--no-score", action="store_true")
    ap.add_argument("--no-local", action="store_true")
    ap.add_argument("--local-dir", help="where the local roots go (default: a temporary folder;"
                    " e.g. /dev/shm to leave the disk's metadata costs out)")
    ap.add_argument("--requests", action="store_true",
                    help="count the S3 requests of each run by kind (from moto's log)")
    args = ap.parse_args()
    bins = [(n, str(pathlib.Path(b).resolve())) for n, b in (b.split("=", 1) for b in args.bin)]
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-claims-"))
    specs = [] if args.no_score else [("score 3200 tasks", score_spec(work))]
    if not args.no_quickstart:
        specs.append(("quickstart", REPO / "sweeps/quickstart.toml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    moto = None
    local = pathlib.Path(tempfile.mkdtemp(prefix="bench-claims-", dir=args.local_dir))
    roots = [] if args.no_local else [("local", lambda name: str(local / name), env)]
    log_path = work / "moto.log"
    if not args.no_s3:
        moto, endpoint = start_moto(open(log_path, "wb") if args.requests else None)
        s3env = dict(env, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test",
                     AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true")
        roots.append(("moto S3", lambda name: f"s3://bench/{name}", s3env))
    try:
        n = 0
        for what, spec in specs:
            for where, root_of, e in roots:
                for name, binary in bins:
                    walls, cpus = [], []
                    counts = None
                    for _ in range(args.repeat):
                        n += 1
                        start = log_path.stat().st_size if log_path.exists() else 0
                        wall, cpu = run(binary, spec, root_of(f"r{n}"), e)
                        walls.append(wall)
                        cpus.append(cpu)
                        if args.requests and where != "local":
                            time.sleep(1.0)  # the log is written after each reply
                            counts = count_requests(log_path, start, f"r{n}")
                    print(f"{what:18s} {where:8s} {name:8s} median {statistics.median(walls):6.2f} s"
                          f"  (runs: {', '.join(f'{w:.2f}' for w in walls)}; CPU s:"
                          f" {', '.join(f'{c:.2f}' for c in cpus)}; load {os.getloadavg()[0]:.1f})",
                          flush=True)
                    if counts:
                        tasks = 3200 if what.startswith("score") else 12
                        total = sum(counts.values())
                        per = f", {total / tasks:.2f} per task" if tasks else ""
                        print(f"    requests of the last run: {total}{per}", flush=True)
                        for kind, c in sorted(counts.items(), key=lambda kv: -kv[1]):
                            per = f"  ({c / tasks:.3f} per task)" if tasks else ""
                            print(f"      {kind:28s} {c:6d}{per}", flush=True)
    finally:
        if moto:
            moto.terminate()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(local, ignore_errors=True)


if __name__ == "__main__":
    main()
