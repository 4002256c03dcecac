#!/usr/bin/env python3
"""Checks what Python readers see in the output of `synthsweep run`, value for value.

usage: check_run.py ROOT EXPECT.json [ROOT EXPECT.json ...]

For each ROOT (a local folder or s3://bucket/prefix; S3 settings from the usual AWS_*
variables), every table is read with polars (`scan_parquet(ROOT/t/**/*.parquet)`) and, on
local roots, pandas (`read_parquet(ROOT/t)`), otherwise pyarrow (`dataset`), with no options.
The column names and types must be those of schemas/*.json (the checks of check_tables.py),
and the rows must be exactly those of EXPECT.json, which the Rust end-to-end test wrote from
its own reading of the same files:

  {"tasks":  {task_id: {column: value, ...}},
   "losses": {task_id: [[iteration, loss, gradient_norm, pixel_change_norm,
                         optimized_metric_loss, reference_metric_loss, scale, scale_loss,
                         step_energy, dist_along_line, dist_from_line], ...]},
   "eigen":  {task_id: [[eigenindex, eigenvalue], ...]},
   "images": {task_id: [[role, index, iteration, channels, height, width, pixels, png_len], ...]},
   "scores": {task_id: [[image_a, image_b, metric, value], ...]}}

Floats are compared exactly (float32 pixels are given as their exact float64 values).
PNG cells must be PNG files of the row's width and height. Exit status 0 when every check
passes; the last line is 'N passed, N failed'.
"""
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_tables as ct  # noqa: E402

TABLES = ct.TABLES


def norm(v):
    """A reader's cell as plain Python: None for nulls (pandas' NaN), lists for arrays."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def rows_polars(root, t):
    import polars as pl
    df = pl.scan_parquet(f"{root.table(t)}/**/*.parquet", storage_options=root.polars_options()).collect()
    return [{k: norm(v) for k, v in r.items()} for r in df.to_dicts()]


def rows_pandas(root, t):
    import pandas as pd
    df = pd.read_parquet(root.table(t))
    return [{k: norm(v) for k, v in r.items()} for r in df.to_dict("records")]


def rows_pyarrow(root, t):
    import pyarrow.dataset as ds
    fs, path = root.pyarrow_fs_and_path(t)
    return [{k: norm(v) for k, v in r.items()}
            for r in ds.dataset(path, format="parquet", filesystem=fs).to_table().to_pylist()]


def key_of(t, r):
    """A data row as the expectation writes it."""
    if t == "losses":
        return [r["iteration"], r["loss"], r["gradient_norm"], r["pixel_change_norm"],
                r["optimized_metric_loss"], r["reference_metric_loss"], r["scale"], r["scale_loss"],
                r["step_energy"], r["dist_along_line"], r["dist_from_line"]]
    if t == "eigen":
        return [r["eigenindex"], r["eigenvalue"]]
    if t == "images":
        png = r["png"]
        return [r["role"], r["index"], r["iteration"], r["channels"], r["height"], r["width"],
                r["pixels"], None if png is None else len(png)]
    return [r["image_a"], r["image_b"], r["metric"], r["value"]]


def sort_key(t, row):
    if t == "images":
        return (row[0], row[1], -1 if row[2] is None else row[2])
    if t == "scores":
        return (row[0], row[1])
    return (row[0],)


def check_values(reader, root, expect, read):
    label = f"{reader} {root.root}"
    tasks = read(root, "tasks")
    want = expect["tasks"]
    ids = [r["task_id"] for r in tasks]
    ct.check(len(ids) == len(set(ids)), f"{label}: a task_id is in tasks twice")
    ct.check(set(ids) == set(want), f"{label}: task ids {sorted(set(ids) ^ set(want))[:4]} differ")
    for r in tasks:
        w = want.get(r["task_id"])
        if w is None:
            continue
        for col, value in w.items():
            ct.check(r[col] == value, f"{label} tasks.{col} of {r['task_id'][:12]}: {r[col]!r} != {value!r}")
        ct.check(isinstance(json.loads(r["params"]), dict), f"{label}: params is not a JSON object")
        ct.check(r["started_at"] <= r["finished_at"], f"{label}: started_at after finished_at")
        ct.check(r["started_at"].tzinfo is not None, f"{label}: started_at has no time zone")
        ct.check(bool(r["host"]) and bool(r["synthsweep_version"]), f"{label}: host/version empty")
    for t in TABLES[1:]:
        got = {}
        for r in read(root, t):
            got.setdefault(r["task_id"], []).append(key_of(t, r))
            if t == "images" and r["png"] is not None:
                png = r["png"]
                ct.check(png[:8] == b"\x89PNG\r\n\x1a\n", f"{label}: png cell is not a PNG")
                wh = (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"))
                ct.check(wh == (r["width"], r["height"]), f"{label}: PNG is {wh}, row says {r['width']}x{r['height']}")
            if t == "images" and r["pixels"] is not None:
                ct.check(len(r["pixels"]) == r["channels"] * r["height"] * r["width"],
                         f"{label}: {len(r['pixels'])} pixels for {r['channels']}x{r['height']}x{r['width']}")
        ct.check(set(got) <= set(ids), f"{label} {t}: rows of tasks not in tasks")
        wt = expect[t]
        ct.check(set(got) == set(wt), f"{label} {t}: tasks with rows {len(got)} != expected {len(wt)}")
        for tid, rows in wt.items():
            mine = sorted(got.get(tid, []), key=lambda x: sort_key(t, x))
            theirs = sorted(rows, key=lambda x: sort_key(t, x))
            ct.check(mine == theirs, f"{label} {t} of {tid[:12]}: {len(mine)} rows differ from the "
                     f"expected {len(theirs)}: {str(mine)[:300]} vs {str(theirs)[:300]}")


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        print(__doc__)
        return 2
    schemas = ct.load_schemas()
    for i in range(0, len(args), 2):
        root = ct.Root(args[i])
        expect = json.loads(Path(args[i + 1]).read_text())
        readers = [("polars", ct.read_polars, rows_polars)]
        readers.append(("pyarrow", ct.read_pyarrow, rows_pyarrow) if root.s3
                       else ("pandas", ct.read_pandas, rows_pandas))
        for name, typed, read in readers:
            for t in TABLES:
                typed(root, t, schemas[t])  # column names and types
            check_values(name, root, expect, read)
        print(f"{root.root}: {len(expect['tasks'])} tasks checked with "
              + ", ".join(r[0] for r in readers))
    print(f"{ct.passed} passed, {ct.failed} failed")
    return 1 if ct.failed else 0


if __name__ == "__main__":
    sys.exit(main())
