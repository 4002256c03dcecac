//! The `synthsweep` binary: parse arguments, validate them into a plan, call the libraries,
//! and turn every error into one line on stderr and an exit code.
mod args;
mod dist_cmd;
mod eval;
mod list;
mod logging;
mod output;
mod slurm_cmd;
mod sweep_cmd;

use clap::Parser;
use std::process::ExitCode;

/// Exit code for bad input (a file, a spec, a value).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for an internal failure.
const EXIT_INTERNAL: u8 = 1;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    // A panic inside libtorch or our code becomes one line, not a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) if e.downcast_ref::<Exit>().is_some() => {
            ExitCode::from(e.downcast_ref::<Exit>().map_or(EXIT_INTERNAL, |x| x.0))
        }
        Ok(Err(e)) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            eprintln!("error: internal failure: {}", one_line(&msg));
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

/// An outcome that is not an error message but a status: the command already reported it.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn run(cli: args::Cli) -> anyhow::Result<()> {
    match cli.command {
        args::Command::Eval(e) => match e.what {
            args::EvalWhat::Model(m) => eval::model(eval::ModelPlan::try_from(m)?),
            args::EvalWhat::Metric(m) => eval::metric(eval::MetricPlan::try_from(m)?),
        },
        args::Command::Plan(a) => sweep_cmd::plan(a),
        args::Command::Run(a) => sweep_cmd::run(a),
        args::Command::Status(a) => sweep_cmd::status(a),
        args::Command::Slurm(a) => slurm_cmd::slurm(a),
        args::Command::Models { json } => list::models(json),
        args::Command::Metrics { json } => list::metrics(json),
    }
}

/// libtorch messages span many lines (with C++ backtraces); keep the first meaningful one.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}
