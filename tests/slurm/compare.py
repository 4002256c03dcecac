#!/usr/bin/env python3
"""Checks that two synthsweep output roots hold the same results: the same task ids, all
done, and bit-identical losses (every column) and image pixels per task.

usage: compare.py ROOT_A ROOT_B [--expect-tasks N]
Exit status 0 when they agree; the last line is 'N passed, N failed'.
"""
import argparse
import sys

import pyarrow.dataset as ds

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}")


def table(root, name, columns):
    t = ds.dataset(f"{root}/{name}", format="parquet").to_table(columns=columns)
    return t.to_pylist()


def load(root):
    tasks = table(root, "tasks", ["task_id", "status", "iterations"])
    losses = table(root, "losses", ["task_id", "iteration", "loss", "gradient_norm",
                                    "pixel_change_norm", "optimized_metric_loss",
                                    "reference_metric_loss"])
    images = table(root, "images", ["task_id", "role", "index", "iteration", "pixels"])
    key = lambda r: tuple(str(r[k]) for k in ("task_id", "role", "index", "iteration"))
    return (
        sorted(tasks, key=lambda r: r["task_id"]),
        sorted(losses, key=lambda r: (r["task_id"], r["iteration"])),
        sorted(images, key=key),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--expect-tasks", type=int)
    args = ap.parse_args()
    ta, la, ia = load(args.a)
    tb, lb, ib = load(args.b)
    ids_a = [r["task_id"] for r in ta]
    ids_b = [r["task_id"] for r in tb]
    check(len(ids_a) == len(set(ids_a)), f"{args.a}: a task committed twice")
    check(ids_a == ids_b, f"task ids differ: {len(ids_a)} vs {len(ids_b)}")
    if args.expect_tasks is not None:
        check(len(ids_a) == args.expect_tasks, f"{len(ids_a)} tasks, expected {args.expect_tasks}")
    check(all(r["status"] == "done" for r in ta + tb), "a task is not done")
    check([r["iterations"] for r in ta] == [r["iterations"] for r in tb], "iterations differ")
    check(len(la) > 0, "no losses")
    check(la == lb, f"losses differ ({len(la)} vs {len(lb)} rows)")
    check(len(ia) == len(ib) and len(ia) > 0, f"image rows: {len(ia)} vs {len(ib)}")
    check(ia == ib, "image pixels differ")
    print(f"compare {args.a} {args.b}: {len(ids_a)} tasks, {len(la)} loss rows, {len(ia)} images")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
