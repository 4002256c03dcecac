//! The `synthsweep` binary: parse arguments, validate them into a plan, call the libraries,
//! and turn every error into one line on stderr and an exit code.
mod args;
mod eval;
mod list;

use clap::Parser;
use std::process::ExitCode;

/// Exit code for bad input (a file, a spec, a value).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for an internal failure.
const EXIT_INTERNAL: u8 = 1;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // A panic inside libtorch or our code becomes one line, not a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
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

fn run(cli: args::Cli) -> anyhow::Result<()> {
    match cli.command {
        args::Command::Eval(e) => match e.what {
            args::EvalWhat::Model(m) => eval::model(eval::ModelPlan::try_from(m)?),
            args::EvalWhat::Metric(m) => eval::metric(eval::MetricPlan::try_from(m)?),
        },
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
