//! `synthsweep report ROOT`: the static HTML report of an output root (crates/report).
use crate::args::ReportArgs;
use crate::output::outln;
use anyhow::Result;
use std::path::PathBuf;
use synthsweep_report::{write_report, Filter, ReportOptions};
use synthsweep_store::{OutputRoot, Store};

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
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        if let Err(e) = std::process::Command::new(opener).arg(&index).spawn() {
            eprintln!(
                "warning: --open: cannot start {opener} ({e}); open {} yourself",
                index.display()
            );
        }
    }
    Ok(())
}
