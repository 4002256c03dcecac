//! Roots shared by the report crate's integration tests: tasks with a few losses and 4x4
//! images, committed through the real store, and the report written over them.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;

use synthsweep_report::{write_report, Filter, ReportError, ReportOptions, ReportOutcome};
use synthsweep_store::*;

pub fn id(i: usize) -> String {
    format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15 + 1)
}

/// A metamer-like task `i` (model a or b) with a few losses and a 4x4 image.
pub fn metamer(i: usize, loss: f64) -> TaskResult {
    TaskResult {
        task: TaskRow {
            task_id: id(i),
            sweep: "s".into(),
            synth: "metamer".into(),
            image: Some("images/x.pgm".into()),
            model: Some(format!(r#"{{"name":"{}"}}"#, ["a", "b"][i % 2])),
            params: r#"{"params":{"max_iter":3}}"#.into(),
            status: TaskStatus::Done,
            iterations: 3,
            final_loss: Some(loss),
            duration_s: 1.0 + i as f64,
            ..Default::default()
        },
        losses: (0..3)
            .map(|k| LossRow {
                iteration: k,
                loss: loss * (3 - k) as f64,
                ..Default::default()
            })
            .collect(),
        images: ["target_image", "metamer"]
            .into_iter()
            .map(|role| ImageRow {
                role: role.into(),
                channels: 1,
                height: 4,
                width: 4,
                pixels: Some(vec![0.5; 16]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// MAD task `i` of the one competition (mse vs ssim on x.pgm): cell `(opt, minmax)`.
pub fn mad(i: usize, opt: &str, minmax: &str) -> TaskResult {
    let other = if opt == "mse" { "ssim" } else { "mse" };
    let mut r = metamer(i, 0.1);
    r.task.synth = "mad".into();
    r.task.model = None;
    r.task.params = r#"{"params":{"max_iter":3}}"#.into();
    r.task.optimized_metric = Some(format!(r#"{{"name":"{opt}"}}"#));
    r.task.reference_metric = Some(format!(r#"{{"name":"{other}"}}"#));
    r.task.minmax = Some(minmax.into());
    for l in &mut r.losses {
        l.optimized_metric_loss = Some(0.01 * i as f64);
        l.reference_metric_loss = Some(0.02);
    }
    r.images[1].role = "mad_image".into();
    r
}

/// Commits `results` in batches of `per_batch`, with the ledger read now (or `ledger`).
pub fn commit(store: &Store, results: Vec<TaskResult>, per_batch: usize, ledger: Option<&Ledger>) {
    let fresh;
    let ledger = match ledger {
        Some(l) => l,
        None => {
            fresh = store.prepare(PrepareOptions::default()).unwrap().ledger;
            &fresh
        }
    };
    let mut opts = WriterOptions::new("r1");
    opts.max_tasks = per_batch;
    let mut w = store.writer(opts, ledger).unwrap();
    for r in results {
        w.push(r).unwrap();
    }
    w.finish().unwrap();
}

/// The report of `store` into `out` with `filters` (`AXIS=VALUE`) and `page_rows` task rows a
/// page (0: one page).
pub fn try_report(
    store: &Store,
    out: &Path,
    filters: &[&str],
    page_rows: usize,
) -> Result<ReportOutcome, ReportError> {
    write_report(
        store,
        &ReportOptions {
            out: out.to_path_buf(),
            filters: filters.iter().map(|f| Filter::parse(f).unwrap()).collect(),
            page_rows,
        },
    )
}
