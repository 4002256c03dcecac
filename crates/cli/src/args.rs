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
    /// More log output: -v debug, -vv trace (RUST_LOG, when set, takes precedence).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output: -q warnings and errors only, -qq errors only.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Expand a sweep spec: task count, axes, exclusions, a time estimate (--json: every task).
    Plan(PlanArgs),
    /// Run a sweep: every task not yet committed in the output root, in parallel.
    Run(RunArgs),
    /// Summarize a finished or running sweep's output root.
    Status(StatusArgs),
    /// Write a static HTML report of an output root: plenoptic's figures per task, MAD
    /// competitions, results against the grid, failures, provenance (incremental).
    Report(ReportArgs),
    /// Submit a sweep to Slurm: one multi-node job, or a job array of shards (--array).
    Slurm(SlurmArgs),
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
    /// Check this machine: libtorch, CUDA, threads; every model and metric forward and
    /// backward and a few iterations of every synthesis kind on the device, compared with
    /// the CPU. Exit 0 when all pass, 1 otherwise.
    Doctor {
        /// Device to check: auto (CUDA when present), cpu, cuda, cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Print one JSON object instead of lines.
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
    /// Model spec: a name (gaussian: its defaults), JSON such as
    /// '{"name":"gaussian","kernel_size":31,"std":3.0}', or @FILE.
    #[arg(long)]
    pub model: String,
    /// Image file (PGM, PNG, JPEG); repeat for a batch of images of one size.
    #[arg(long = "image", required = true)]
    pub images: Vec<PathBuf>,
    /// Output .npz file.
    #[arg(long)]
    pub out: PathBuf,
    /// Load the images as one gray channel (plenoptic's load_images as_gray, its default):
    /// colour by skimage's rgb2gray weights, alpha composited onto white first. `false`
    /// keeps colour (a gray file becomes 3 channels, RGBA keeps alpha), as plenoptic does.
    #[arg(long = "as-gray", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub as_gray: bool,
    /// Device: auto (CUDA when present), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct EvalMetricArgs {
    /// Metric spec: a name (ms_ssim: its defaults), JSON such as '{"name":"ssim"}', or @FILE.
    #[arg(long)]
    pub metric: String,
    /// First image file.
    pub a: PathBuf,
    /// Second image file (same size and channels).
    pub b: PathBuf,
    /// Print one JSON object with the resolved metric spec and "values" (batch x channel).
    #[arg(long)]
    pub json: bool,
    /// Load the images as one gray channel (plenoptic's load_images as_gray, its default):
    /// colour by skimage's rgb2gray weights, alpha composited onto white first. `false`
    /// keeps colour (a gray file becomes 3 channels, RGBA keeps alpha), as plenoptic does.
    #[arg(long = "as-gray", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub as_gray: bool,
    /// Device: auto (CUDA when present), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The sweep spec (TOML).
    pub spec: PathBuf,
    /// Print one JSON object per task (id and resolved parameters) instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Output root whose recorded durations inform the estimate (default ./results/<name>).
    #[arg(long)]
    pub out: Option<String>,
    /// Skip the calibration run (no time estimate unless durations are recorded).
    #[arg(long)]
    pub no_calibrate: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep spec (TOML).
    pub spec: PathBuf,
    /// Output root: a local folder or s3://bucket/prefix (default ./results/<name>).
    #[arg(long)]
    pub out: Option<String>,
    /// CPU worker threads (default: one per CUDA device when there are GPUs, else the
    /// fastest split of this machine's cores, see the README).
    /// At most 4 x the CPUs this process may use.
    #[arg(long, value_parser = one_to_cpus, allow_negative_numbers = true)]
    pub workers: Option<usize>,
    /// libtorch intra-op threads per process (default: cores / workers; at most 4 x the
    /// CPUs this process may use).
    #[arg(long, value_parser = one_to_cpus, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Devices for the workers, comma-separated: cpu, cuda, cuda:N, auto.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// Run again the tasks committed as failed.
    #[arg(long)]
    pub retry_failed: bool,
    /// Commit a batch when this many results are buffered.
    #[arg(long, default_value_t = 256, value_parser = at_least_one::<usize>, allow_negative_numbers = true)]
    pub batch_tasks: usize,
    /// Tasks a worker takes at once: metamers and MAD competitions that share a batch key
    /// (kind, model/metrics, image shape, every parameter but image and seed) run as one
    /// synthesis over a (N, C, H, W) tensor (default: per device, see the README; at most
    /// 1024).
    #[arg(long, value_name = "N", value_parser = batch_size, allow_negative_numbers = true)]
    pub batch: Option<usize>,
    /// Commit a batch at least this often (seconds).
    #[arg(long, default_value_t = 30.0, value_parser = positive_seconds, allow_negative_numbers = true)]
    pub batch_seconds: f64,
    /// Run only shard I of N (0 <= I < N) of the plan's tasks, e.g. a job array element:
    /// --shard $SLURM_ARRAY_TASK_ID/N. Every shard computes the same split from the spec.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Run over N processes (timely over TCP; process 0 hands out the tasks), with
    /// --process. Inside a Slurm step of several tasks, read from Slurm.
    #[arg(long, value_name = "N", value_parser = at_least_one::<usize>, allow_negative_numbers = true)]
    pub processes: Option<usize>,
    /// This process's index, 0 (the coordinator) to N-1, with --processes.
    #[arg(long, value_name = "I")]
    pub process: Option<usize>,
    /// Host file of a multi-process run: one host:port per process, in process order
    /// (default: localhost:BASE+i).
    #[arg(long, value_name = "HOSTFILE")]
    pub hosts: Option<PathBuf>,
    /// First port of a multi-process run without --hosts (default 2101; under Slurm,
    /// derived from the job id).
    #[arg(long, value_name = "BASE", value_parser = at_least_one::<u16>, allow_negative_numbers = true)]
    pub port: Option<u16>,
}

/// A whole number of at least 1 (worker, thread, process, node counts; batch sizes; ports).
/// clap puts the flag's name before the message: "invalid value '0' for '--threads <THREADS>'".
pub fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    match s.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        Ok(_) => Err(format!("expected a whole number of at least 1, got {s}")),
        Err(_) => Err(format!(
            "expected a whole number of at least 1 (at most {} bits), got {s:?}",
            std::mem::size_of::<T>() * 8
        )),
    }
}

/// The CPUs this process may use (its affinity mask and cgroup quota: under Slurm, the CPUs
/// of its allocation).
pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A whole number from 1 to 4 x [`cpus`] (`--threads`, `--workers`): a worker or thread
/// per CPU is the default; a few more only time-slice the same cores (useful to check that
/// results do not depend on the split), and a slip such as 100000 would start that many
/// threads before anything else could fail.
pub fn one_to_cpus(s: &str) -> Result<usize, String> {
    let n: usize = at_least_one(s)?;
    at_most_cpus(n)
}

/// `n` when it is at most 4 x [`cpus`], else the message for it.
pub fn at_most_cpus(n: usize) -> Result<usize, String> {
    let cpus = cpus();
    if n > 4 * cpus {
        Err(format!(
            "expected at most {} (4 x the {cpus} CPUs this process may use), got {n}",
            4 * cpus
        ))
    } else {
        Ok(n)
    }
}

/// `--batch`: 1 to 1024 tasks in one tensor (more is a slip, not a batch: it would claim
/// that many tasks at once and overflow the multi-process request's count).
pub fn batch_size(s: &str) -> Result<usize, String> {
    let n: usize = at_least_one(s)?;
    if n > 1024 {
        return Err(format!(
            "expected at most 1024 tasks in one tensor, got {n}"
        ));
    }
    Ok(n)
}

/// A duration in seconds, greater than 0 (fractions allowed) and representable as a
/// `Duration`.
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && std::time::Duration::try_from_secs_f64(x).is_ok() => Ok(x),
        _ => Err(format!(
            "expected a number of seconds greater than 0 (e.g. 30 or 0.5), got {s:?}"
        )),
    }
}

/// `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("expected I/N with 0 <= I < N (e.g. 3/8), got {s:?}");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (index, count) = (
        i.trim().parse::<u64>().map_err(|_| bad())?,
        n.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output root: a local folder or s3://bucket/prefix.
    pub root: String,
    /// How many of the slowest tasks to list.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub slowest: usize,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output root: a local folder or s3://bucket/prefix.
    pub root: String,
    /// Folder of the report (default: ROOT/_report for a local root, ./report-<bucket>-<prefix>
    /// for an S3 root). Re-running into the same folder draws only the new tasks. A new or
    /// empty folder, or one holding a report: a folder of other files, the root itself and
    /// its table folders are refused.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep only tasks whose AXIS shows VALUE (image, model, optimized_metric,
    /// reference_metric, minmax, seed, synth, status, or a parameter such as
    /// optimizer.lr; for score sweeps also metric, image_a, image_b). Repeated on one axis:
    /// any of the values; on different axes: all of them. Numbers match by value (8 = 8.0).
    #[arg(long = "where", value_name = "AXIS=VALUE")]
    pub filters: Vec<String>,
    /// Open index.html in the default browser afterwards (xdg-open / open).
    #[arg(long)]
    pub open: bool,
    /// Rows per page of the task table (tasks.html, tasks-2.html, ...).
    #[arg(long, default_value_t = synthsweep_report::PAGE_ROWS, value_parser = at_least_one::<usize>, allow_negative_numbers = true)]
    pub page_rows: usize,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// The sweep spec (TOML).
    pub spec: PathBuf,
    /// Nodes of the job (one synthsweep process per node unless --tasks-per-node).
    #[arg(long, default_value_t = 1, value_parser = at_least_one::<u32>, allow_negative_numbers = true)]
    pub nodes: u32,
    /// synthsweep processes per node (e.g. one per GPU: the value of --gpus-per-node).
    #[arg(long, default_value_t = 1, value_parser = at_least_one::<u32>, allow_negative_numbers = true)]
    pub tasks_per_node: u32,
    /// GPUs per node (0: CPU only).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub gpus_per_node: u32,
    /// CPUs per synthsweep process (default: the partition's default).
    #[arg(long, value_parser = at_least_one::<u32>, allow_negative_numbers = true)]
    pub cpus_per_task: Option<u32>,
    /// Time limit per job or array element: minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S.
    #[arg(long)]
    pub time: String,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm account.
    #[arg(long)]
    pub account: Option<String>,
    /// Submit a job array whose element i runs shard i/K of the tasks; K defaults to
    /// min(tasks, 1000) and is capped by the cluster's MaxArraySize.
    #[arg(long, value_name = "K", num_args = 0..=1, require_equals = true,
          value_parser = at_least_one::<u64>, allow_negative_numbers = true)]
    pub array: Option<Option<u64>>,
    /// Output root (default ./results/<name>); the script and job logs go to ROOT/_slurm/.
    #[arg(long)]
    pub out: Option<String>,
    /// Print the sbatch script instead of submitting it.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds before the time limit at which the processes get SIGUSR1 to checkpoint
    /// (default: 120, at most half the time limit).
    #[arg(long, value_name = "SECONDS", value_parser = at_least_one::<u64>, allow_negative_numbers = true)]
    pub signal_before: Option<u64>,
    /// Job name (default: the sweep's name).
    #[arg(long)]
    pub job_name: Option<String>,
    /// The synthsweep binary the job runs (default: this one; it must be reachable from
    /// the compute nodes).
    #[arg(long, value_name = "PATH")]
    pub synthsweep: Option<PathBuf>,
    /// Further arguments for `synthsweep run`, after `--` (e.g. -- --workers 4).
    #[arg(last = true)]
    pub run_args: Vec<String>,
}
