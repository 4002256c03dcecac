//! The `synthsweep` binary: parse arguments, validate them into a plan, call the libraries,
//! and turn every error into one line on stderr and an exit code.
mod args;
mod dist_cmd;
mod doctor;
mod eval;
mod list;
mod logging;
mod output;
mod report_cmd;
mod slurm_cmd;
mod sweep_cmd;

use clap::Parser;
use std::process::ExitCode;

/// Exit code for bad input (a file, a spec, a value).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for an internal failure.
const EXIT_INTERNAL: u8 = 1;
/// Exit code for a storage failure in the middle of a run (EX_IOERR: an S3 outage, a full
/// disk, a permission lost). Transient: nothing half-written is visible, the run can be run
/// again as it is, and the Slurm script requeues it.
pub(crate) const EXIT_STORAGE: u8 = 74;

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
            let code = exit_code(&e);
            let what = match code {
                EXIT_STORAGE => {
                    "storage failure, run the same command again once the storage is back"
                }
                synthsweep_exec::EXIT_PREEMPTED => "transient, run the same command again",
                _ => "",
            };
            if what.is_empty() {
                eprintln!("error: {}", one_line(&message(&e)));
            } else {
                eprintln!("error: {} ({what}; exit {code})", one_line(&message(&e)));
            }
            ExitCode::from(code)
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
        args::Command::Report(a) => report_cmd::report(a),
        args::Command::Slurm(a) => slurm_cmd::slurm(a),
        args::Command::Models { json } => list::models(json),
        args::Command::Metrics { json } => list::metrics(json),
        args::Command::Doctor { device, json } => match doctor::doctor(&device, json)? {
            0 => Ok(()),
            code => Err(Exit(code as u8).into()),
        },
    }
}

/// The exit code of an error: 74 when the storage failed (or this writer's lease lapsed
/// because its renewals failed, or the planning check's or the report's scratch space in TMPDIR failed), 75 when the lease lapsed for another reason (the process
/// was stalled; others took its tasks over) or when the processes of a multi-process run
/// could not connect (a port in use), 2 (bad input) otherwise. A storage error is
/// found wherever it is in the chain of causes, also inside the exec and dist crates' errors.
fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        use synthsweep_dist::DistError;
        use synthsweep_exec::ExecError;
        let store = cause
            .downcast_ref::<synthsweep_store::StoreError>()
            .or_else(
                || match cause.downcast_ref::<synthsweep_report::ReportError>() {
                    Some(synthsweep_report::ReportError::Store(s)) => Some(s),
                    _ => None,
                },
            )
            .or_else(|| match cause.downcast_ref::<ExecError>() {
                Some(ExecError::Store(s)) => Some(s),
                _ => None,
            })
            .or_else(|| match cause.downcast_ref::<DistError>() {
                Some(DistError::Store(s)) | Some(DistError::Exec(ExecError::Store(s))) => Some(s),
                _ => None,
            });
        if let Some(DistError::Connect { .. }) = cause.downcast_ref::<DistError>() {
            return synthsweep_exec::EXIT_PREEMPTED;
        }
        // The duplicate-id check's and the report's scratch space (TMPDIR full or
        // unwritable) is storage.
        if let Some(synthsweep_sweep::SweepError::Scratch { .. }) =
            cause.downcast_ref::<synthsweep_sweep::SweepError>()
        {
            return EXIT_STORAGE;
        }
        if let Some(synthsweep_report::ReportError::Scratch { .. }) =
            cause.downcast_ref::<synthsweep_report::ReportError>()
        {
            return EXIT_STORAGE;
        }
        if let Some(s) = store {
            if s.is_storage() {
                return EXIT_STORAGE;
            }
            if s.is_lease_lost() {
                return synthsweep_exec::EXIT_PREEMPTED;
            }
        }
    }
    EXIT_BAD_INPUT
}

/// libtorch messages span many lines (with C++ backtraces); keep the first meaningful one.
/// The error and its causes, `outer: cause: ...`, each cause once: a cause whose text the
/// message already holds (an error that shows its source in its own text, as
/// `cannot read sweep spec s.toml: No such file or directory`) is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}
