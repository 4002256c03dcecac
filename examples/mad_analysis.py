"""Analyse a MAD competition study from its tables, with polars and matplotlib.

Reads the `tasks` and `losses` tables of a synthsweep output root (local folder, or
s3://bucket/prefix with the AWS_* variables polars reads), joins them, and for every
(optimized metric, reference metric, min/max) of each image gives the optimized metric's
value at the start (iteration 0: the initial noisy image) and at the end of the synthesis,
with the reference metric's drift (it should stay where it started: it is held). Prints
that table and draws one figure: per metric pair, the optimized metric's initial and
final values of every image, for min and max (as the numbers behind plenoptic's
`plot_loss_all`, over a whole study).

    .venv/bin/python examples/mad_analysis.py results/quickstart            # -> PNG in the root
    .venv/bin/python examples/mad_analysis.py ROOT --out mad.png --no-plot  # table only

Units: the metrics' own (mse: squared intensity on [0, 1]; ssim_distance: 1 - SSIM).
"""

import argparse
import sys

import polars as pl


def metric_name(col: str) -> pl.Expr:
    """The metric's name from its JSON spec ("mse" or {"name": "mse", ...})."""
    c = pl.col(col)
    return (
        pl.when(c.str.starts_with("{"))
        .then(c.str.json_path_match("$.name"))
        .otherwise(c.str.strip_chars('"'))
        .alias(col + "_name")
    )


def mad_table(root: str) -> pl.DataFrame:
    """One row per done MAD task: image, metrics, min/max, seed, and the optimized and
    reference metric values at the first and the last recorded iteration."""
    tasks = (
        pl.scan_parquet(f"{root}/tasks/**/*.parquet")
        .filter((pl.col("synth") == "mad") & (pl.col("status") == "done"))
        .select(
            "task_id",
            "image",
            "seed",
            "minmax",
            "metric_tradeoff_lambda",
            metric_name("optimized_metric"),
            metric_name("reference_metric"),
        )
    )
    losses = pl.scan_parquet(f"{root}/losses/**/*.parquet").select(
        "task_id", "iteration", "optimized_metric_loss", "reference_metric_loss"
    )
    ends = (
        losses.join(tasks.select("task_id"), on="task_id")
        .sort("task_id", "iteration")
        .group_by("task_id")
        .agg(
            pl.col("optimized_metric_loss").first().alias("optimized_initial"),
            pl.col("optimized_metric_loss").last().alias("optimized_final"),
            pl.col("reference_metric_loss").first().alias("reference_initial"),
            pl.col("reference_metric_loss").last().alias("reference_final"),
            pl.col("iteration").max().alias("iterations"),
        )
    )
    return (
        tasks.join(ends, on="task_id")
        .with_columns(
            (pl.col("reference_final") - pl.col("reference_initial")).alias("reference_drift")
        )
        .sort("optimized_metric_name", "reference_metric_name", "image", "minmax")
        .collect()
    )


def plot(df: pl.DataFrame, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = df.select("optimized_metric_name", "reference_metric_name").unique(maintain_order=True)
    fig, axes = plt.subplots(1, pairs.height, figsize=(4.5 * pairs.height, 4), squeeze=False)
    images = df["image"].unique(maintain_order=True).to_list()
    for ax, (opt, ref) in zip(axes[0], pairs.iter_rows()):
        sub = df.filter(
            (pl.col("optimized_metric_name") == opt) & (pl.col("reference_metric_name") == ref)
        )
        for k, direction in enumerate(["min", "max"]):
            d = sub.filter(pl.col("minmax") == direction)
            xs = [images.index(i) + (k - 0.5) * 0.25 for i in d["image"]]
            ax.scatter(xs, d["optimized_initial"], marker="o", facecolors="none",
                       edgecolors="grey", label="initial" if k == 0 else None)
            ax.scatter(xs, d["optimized_final"], marker="v" if direction == "min" else "^",
                       label=f"final ({direction})")
            for x, a, b in zip(xs, d["optimized_initial"], d["optimized_final"]):
                ax.plot([x, x], [a, b], color="lightgrey", zorder=0)
        ax.set_xticks(range(len(images)))
        ax.set_xticklabels([i.rsplit("/", 1)[-1] for i in images], rotation=30, ha="right")
        ax.set_title(f"optimize {opt}, hold {ref}")
        ax.set_ylabel(f"{opt} (final vs initial)")
        ax.legend(fontsize="small")
    fig.suptitle("MAD competition: optimized metric per image, min and max")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", nargs="?", default="results/quickstart",
                   help="the output root (default: results/quickstart)")
    p.add_argument("--out", help="the figure's path (default: ROOT/mad_analysis.png)")
    p.add_argument("--no-plot", action="store_true", help="print the table only")
    p.add_argument("--csv", help="also write the table as CSV to this path")
    a = p.parse_args(argv)
    df = mad_table(a.root)
    if df.is_empty():
        print(f"no done MAD task in {a.root}", file=sys.stderr)
        return 2
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200):
        print(df.drop("task_id", "seed"))
    if a.csv:
        df.write_csv(a.csv)
    if not a.no_plot:
        out = a.out or f"{a.root.rstrip('/')}/mad_analysis.png"
        plot(df, out)
        print(f"figure: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
