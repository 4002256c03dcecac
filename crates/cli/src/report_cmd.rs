//! `synthsweep report ROOT`: the static HTML report of an output root (crates/report).
use crate::args::ReportArgs;
use crate::output::outln;
use crate::Exit;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use synthsweep_report::{write_report, Filter, ReportOptions};
use synthsweep_store::{OutputRoot, Store};

/// Exit code when `--open` could not open the written report (as an internal failure: the
/// input was fine and the report is there).
const EXIT_OPEN_FAILED: u8 = 1;

/// The report's folder when `--out` is not given: `ROOT/_report` for a local root,
/// `./report-<bucket>-<prefix>` (slashes as dashes) for an S3 root.
fn default_out(root: &OutputRoot, given: &str) -> PathBuf {
    match root {
        OutputRoot::Local(p) => p.join("_report"),
        _ => {
            let name: String = given
                .trim_start_matches("s3://")
                .trim_end_matches('/')
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            PathBuf::from(format!("report-{name}"))
        }
    }
}

pub fn report(a: ReportArgs) -> Result<()> {
    let root = OutputRoot::parse(&a.root)?;
    if let OutputRoot::Local(p) = &root {
        crate::sweep_cmd::existing_root(&a.root, p)?;
    }
    // Filters are checked for form before anything is read.
    let filters = a
        .filters
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let out = a.out.clone().unwrap_or_else(|| default_out(&root, &a.root));
    let store = Store::open(&root)?;
    let outcome = write_report(
        &store,
        &ReportOptions {
            out,
            filters,
            page_rows: a.page_rows,
        },
    )?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    tracing::info!(
        "report: {} tasks, {} pages drawn, {} kept, {} batches read",
        outcome.tasks,
        outcome.drawn,
        outcome.kept,
        outcome.batches_read
    );
    let index = std::path::absolute(&outcome.index).unwrap_or(outcome.index.clone());
    outln!(
        "report: {} tasks ({} pages drawn, {} kept from before): {}",
        outcome.tasks,
        outcome.drawn,
        outcome.kept,
        index.display()
    )?;
    if a.open {
        open_in_browser(&index)?;
    }
    Ok(())
}

/// How long `--open` waits for the opener: xdg-open and open return once the browser has
/// the page (or at once when they fail); an opener still running after this is the
/// browser itself, left running.
const OPENER_WAIT: Duration = Duration::from_secs(10);

/// Opens `index` with `xdg-open` (`open` on macOS). The report is written either way: an
/// opener that cannot start or exits with a failure is a warning and exit 1 (the command
/// did not do all it was asked; the path was printed).
fn open_in_browser(index: &Path) -> Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let fail = |why: String| -> anyhow::Error {
        eprintln!(
            "warning: --open: {why}; the report is written, open {} yourself",
            index.display()
        );
        Exit(EXIT_OPEN_FAILED).into()
    };
    let mut child = Command::new(opener)
        .arg(index)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start {opener} ({e})")))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(fail(format!("{opener} failed ({status})"))),
            Ok(None) if started.elapsed() < OPENER_WAIT => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(fail(format!("waiting for {opener}: {e}"))),
        }
    }
}
