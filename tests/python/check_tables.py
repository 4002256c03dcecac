#!/usr/bin/env python3
"""Reads a synthsweep output dataset with the common Python readers and checks it against
schemas/*.json: column names, types (and nullability where the reader keeps it), row counts
that agree between readers, each task once in `tasks`, and no rows of uncommitted tasks.

usage: check_tables.py ROOT [--readers polars,pandas,pyarrow,duckdb] [--expect-tasks N]

ROOT is a local folder or s3://bucket/prefix. For S3 the usual variables are read:
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP.
Readers are used with no options, as a user would (`scan_parquet(".../**/*.parquet")`,
`read_parquet(folder)`, `dataset(folder)`); a reader that is not installed is skipped with a
note, except one named in --readers. pandas and DuckDB are used on local roots only (pandas
needs s3fs and DuckDB its httpfs extension for S3, neither of which is a dependency).
Exit status 0 when every check passes; the last line is 'N passed, N failed'.
"""
import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
TABLES = ["tasks", "losses", "eigen", "images", "scores"]

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}")


def load_schemas():
    return {t: json.loads((SCHEMAS / f"{t}.json").read_text()) for t in TABLES}


# --- expected types per reader ----------------------------------------------------------

def pa_type(name):
    import pyarrow as pa
    if name.startswith("list<") and name.endswith(">"):
        return pa.list_(pa_type(name[5:-1]))
    return {
        "utf8": pa.string(), "binary": pa.binary(), "bool": pa.bool_(),
        "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
        "float64": pa.float64(), "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
    }[name]


def pl_type(name):
    import polars as pl
    if name.startswith("list<") and name.endswith(">"):
        return pl.List(pl_type(name[5:-1]))
    return {
        "utf8": pl.String, "binary": pl.Binary, "bool": pl.Boolean,
        "int32": pl.Int32, "int64": pl.Int64, "float32": pl.Float32,
        "float64": pl.Float64, "timestamp[us, UTC]": pl.Datetime("us", "UTC"),
    }[name]


def duck_type(name):
    if name.startswith("list<") and name.endswith(">"):
        return duck_type(name[5:-1]) + "[]"
    return {
        "utf8": "VARCHAR", "binary": "BLOB", "bool": "BOOLEAN", "int32": "INTEGER",
        "int64": "BIGINT", "float32": "FLOAT", "float64": "DOUBLE",
        "timestamp[us, UTC]": "TIMESTAMP WITH TIME ZONE",
    }[name]


# --- where the files are ----------------------------------------------------------------

class Root:
    def __init__(self, root):
        self.root = root.rstrip("/")
        self.s3 = self.root.startswith("s3://")
        if self.s3:
            u = urlparse(self.root)
            self.bucket, self.prefix = u.netloc, u.path.strip("/")
            self.endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT")

    def table(self, t):
        return f"{self.root}/{t}"

    def polars_options(self):
        if not self.s3:
            return None
        opts = {k.lower(): v for k, v in os.environ.items() if k in (
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP",
            "AWS_SESSION_TOKEN")}
        if self.endpoint:
            opts["aws_endpoint_url"] = self.endpoint
        return opts

    def pyarrow_fs_and_path(self, t):
        if not self.s3:
            return None, self.table(t)
        import pyarrow.fs as pafs
        kw = {"region": os.environ.get("AWS_REGION", "us-east-1")}
        if self.endpoint:
            u = urlparse(self.endpoint)
            kw["endpoint_override"] = u.netloc
            kw["scheme"] = u.scheme
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            kw["access_key"] = os.environ["AWS_ACCESS_KEY_ID"]
            kw["secret_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        path = "/".join(p for p in [self.bucket, self.prefix, t] if p)
        return pafs.S3FileSystem(**kw), path

    def file_names(self, t):
        """Names of every file in a table folder (to check there is only Parquet)."""
        if not self.s3:
            d = Path(self.table(t))
            return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()) if d.exists() else []
        import pyarrow.fs as pafs
        fs, path = self.pyarrow_fs_and_path(t)
        infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=True))
        return sorted(i.path[len(path) + 1:] for i in infos if i.type == pafs.FileType.File)


# --- readers ----------------------------------------------------------------------------

def read_polars(root, t, cols):
    import polars as pl
    lf = pl.scan_parquet(f"{root.table(t)}/**/*.parquet", storage_options=root.polars_options())
    schema = lf.collect_schema()
    check(list(schema.names()) == [c["name"] for c in cols], f"polars {t}: column names {schema.names()}")
    for c in cols:
        got = schema.get(c["name"])
        check(got == pl_type(c["type"]), f"polars {t}.{c['name']}: {got} != {c['type']}")
    df = lf.collect()
    for c in cols:
        if not c["nullable"]:
            check(df[c["name"]].null_count() == 0, f"polars {t}.{c['name']}: nulls in a non-nullable column")
    return df.height, set(df["task_id"].unique().to_list()), (
        df["task_id"].n_unique() == df.height if t == "tasks" else True)


def read_pyarrow(root, t, cols):
    import pyarrow.dataset as ds
    fs, path = root.pyarrow_fs_and_path(t)
    d = ds.dataset(path, format="parquet", filesystem=fs)
    check(d.schema.names == [c["name"] for c in cols], f"pyarrow {t}: column names {d.schema.names}")
    for c in cols:
        f = d.schema.field(c["name"])
        check(f.type == pa_type(c["type"]), f"pyarrow {t}.{c['name']}: {f.type} != {c['type']}")
        check(f.nullable == c["nullable"], f"pyarrow {t}.{c['name']}: nullable {f.nullable} != {c['nullable']}")
    table = d.to_table()
    return table.num_rows, set(table.column("task_id").to_pylist()), None


def read_pandas(root, t, cols):
    import pandas as pd
    df = pd.read_parquet(root.table(t))
    check(list(df.columns) == [c["name"] for c in cols], f"pandas {t}: column names {list(df.columns)}")
    for c in cols:
        kind = df[c["name"]].dtype.kind
        ty = c["type"]
        want = {"int32": "i", "int64": "i", "float32": "f", "float64": "f", "bool": "b",
                "timestamp[us, UTC]": "M"}.get(ty, "O")
        if ty.startswith("int") and c["nullable"]:
            ok = kind in "if"  # an int column with nulls becomes float in numpy-backed pandas
        elif want == "O":
            ok = kind in "OU" or str(df[c["name"]].dtype) in ("str", "string")
        else:
            ok = kind == want
        check(ok, f"pandas {t}.{c['name']}: dtype {df[c['name']].dtype} for {ty}")
    # With Arrow-backed dtypes pandas keeps the exact types.
    dfa = pd.read_parquet(root.table(t), dtype_backend="pyarrow")
    for c in cols:
        got = dfa[c["name"]].dtype.pyarrow_dtype
        check(got == pa_type(c["type"]), f"pandas[pyarrow] {t}.{c['name']}: {got} != {c['type']}")
    return len(df), set(df["task_id"]), None


def read_duckdb(root, t, cols):
    import duckdb
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{root.table(t)}/*.parquet')")
    check(rel.columns == [c["name"] for c in cols], f"duckdb {t}: column names {rel.columns}")
    for name, ty, c in zip(rel.columns, rel.types, cols):
        check(str(ty) == duck_type(c["type"]), f"duckdb {t}.{name}: {ty} != {c['type']}")
    src = f"read_parquet('{root.table(t)}/*.parquet')"
    n = con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0]
    ids = {r[0] for r in con.execute(f"SELECT DISTINCT task_id FROM {src}").fetchall()}
    return n, ids, None


READERS = {"polars": read_polars, "pyarrow": read_pyarrow, "pandas": read_pandas, "duckdb": read_duckdb}
MODULES = {"polars": "polars", "pyarrow": "pyarrow", "pandas": "pandas", "duckdb": "duckdb"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root")
    ap.add_argument("--readers", help="comma-separated; default: all installed (pandas, duckdb: local only)")
    ap.add_argument("--expect-tasks", type=int, help="number of rows `tasks` must have")
    args = ap.parse_args()
    root = Root(args.root)
    schemas = load_schemas()

    if args.readers:
        readers = args.readers.split(",")
        for r in readers:
            __import__(MODULES[r])  # named explicitly: missing is an error
    else:
        readers = []
        for r in READERS:
            if root.s3 and r in ("pandas", "duckdb"):
                continue
            try:
                __import__(MODULES[r])
                readers.append(r)
            except ImportError:
                print(f"note: {r} not installed, skipped")

    for t in TABLES:
        names = root.file_names(t)
        check(bool(names), f"{t}: no files")
        stray = [n for n in names if not n.endswith(".parquet")]
        check(not stray, f"{t}: non-Parquet files in the table folder: {stray}")

    committed = None
    for r in readers:
        counts = {}
        for t in TABLES:
            n, ids, unique = READERS[r](root, t, schemas[t])
            counts[t] = n
            if t == "tasks":
                if unique is not None:
                    check(unique, f"{r}: a task_id is in `tasks` more than once")
                committed = ids if committed is None else committed
                check(ids == committed, f"{r}: task ids of `tasks` differ from another reader's")
                check(len(ids) == n, f"{r}: {n} rows in tasks but {len(ids)} distinct task ids")
                if args.expect_tasks is not None:
                    check(n == args.expect_tasks, f"{r}: {n} tasks, expected {args.expect_tasks}")
            else:
                check(ids <= committed, f"{r} {t}: rows of tasks not in `tasks`: {sorted(ids - committed)[:5]}")
        print(f"{r}: " + ", ".join(f"{t} {counts[t]}" for t in TABLES))
        if r == readers[0]:
            first = counts
        else:
            check(counts == first, f"{r}: row counts {counts} differ from {readers[0]}'s {first}")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
