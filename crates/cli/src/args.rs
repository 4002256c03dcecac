//! Command-line arguments (clap derive): the low-level form, validated later into plans.
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Synthesize images that compare models of human perception (plenoptic's MAD
/// competition, eigendistortions, metamers, geodesics), from one image to whole studies.
#[derive(Debug, Parser)]
#[command(name = "synthsweep", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a model's representation or a metric on image files.
    Eval(EvalArgs),
    /// List the models with their parameters and defaults.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the metrics with their parameters and defaults.
    Metrics {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub what: EvalWhat,
}

#[derive(Debug, Subcommand)]
pub enum EvalWhat {
    /// Write a model's representation of one image or a batch as float32 arrays in .npz.
    Model(EvalModelArgs),
    /// Print a metric's value for two images: one per batch element and channel.
    Metric(EvalMetricArgs),
}

#[derive(Debug, Args)]
pub struct EvalModelArgs {
    /// Model spec as JSON, e.g. '{"name":"gaussian","kernel_size":31,"std":3.0}', or @FILE.
    #[arg(long)]
    pub model: String,
    /// Image file (PGM, PNG, JPEG); repeat for a batch of images of one size.
    #[arg(long = "image", required = true)]
    pub images: Vec<PathBuf>,
    /// Output .npz file.
    #[arg(long)]
    pub out: PathBuf,
    /// Device: auto (CUDA when present), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct EvalMetricArgs {
    /// Metric spec as JSON, e.g. '{"name":"ssim"}', or @FILE.
    #[arg(long)]
    pub metric: String,
    /// First image file.
    pub a: PathBuf,
    /// Second image file (same size and channels).
    pub b: PathBuf,
    /// Print one JSON object with the resolved metric spec and "values" (batch x channel).
    #[arg(long)]
    pub json: bool,
    /// Device: auto (CUDA when present), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}
