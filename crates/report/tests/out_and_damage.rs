//! The report's `--out` folder and damaged roots: a folder of the user's (files, no
//! manifest) is refused and nothing of theirs is removed, even inside a report folder; a
//! folder of the root's tables (or the root) is refused; one bad run record hides only
//! itself; a truncated data file is named on its tasks' pages (not taken for an old root);
//! the resume note goes once a later run ran every task; seeds are ordered as numbers.
//! Real store, real files (no libtorch).
use std::path::Path;

mod common;

use common::id;
use synthsweep_report::{ReportError, ReportOutcome};
use synthsweep_store::*;

/// A metamer task `i` (model a or b, seed `seed`) with three losses and 4x4 images.
fn metamer(i: usize, seed: i64) -> TaskResult {
    let mut r = common::metamer(i, 0.1);
    r.task.seed = seed;
    r.task.duration_s = 1.0;
    r
}

/// A MAD task `i`: mse minimized, ssim held.
fn mad(i: usize) -> TaskResult {
    let mut r = common::mad(i, "mse", "min");
    r.task.duration_s = 1.0;
    for l in &mut r.losses {
        l.optimized_metric_loss = Some(0.01);
    }
    r
}

/// A root at `dir` holding `results`, committed in one batch.
fn root(dir: &Path, results: Vec<TaskResult>) -> Store {
    let store = Store::open(&OutputRoot::Local(dir.to_path_buf())).unwrap();
    common::commit(&store, results, WriterOptions::new("r1").max_tasks, None);
    store
}

fn report(store: &Store, out: &Path, filters: &[&str]) -> Result<ReportOutcome, ReportError> {
    common::try_report(store, out, filters, 0)
}

/// Writes `files` (path relative to `dir`, text) for the user.
fn user_files(dir: &Path, files: &[&str]) {
    for f in files {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }
}

fn files_under(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn out_folders_of_the_user_or_the_root_are_refused_and_user_files_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("root");
    let store = root(&r, (0..4).map(|i| metamer(i, 0)).collect());
    let mine = ["t/myproject/data.csv", "mad/paper.tex", "notes.txt"];

    // A folder of the user's: refused before anything is written, nothing removed.
    let u = tmp.path().join("u");
    user_files(&u, &mine[..2]);
    let e = report(&store, &u, &[]).unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&u.display().to_string()) && msg.contains("_manifest"),
        "{msg}"
    );
    assert_eq!(files_under(&u), 2, "{:?}", walk(&u));

    // The root itself, a table folder, a folder under one (also through `..`), the store's
    // own folders: refused, nothing created there.
    let before = files_under(&r);
    for (out, why) in [
        (r.clone(), "output root itself"),
        (r.join("tasks"), "table folder tasks/"),
        (r.join("losses").join("report"), "table folder losses/"),
        (
            r.join("_report").join("..").join("images"),
            "table folder images/",
        ),
        (r.join("_runs"), "_runs/"),
        (r.join("_staging").join("x"), "_staging/"),
    ] {
        let e = report(&store, &out, &[]).unwrap_err();
        assert!(e.is_bad_input(), "{}: {e}", out.display());
        assert!(e.to_string().contains(why), "{}: {e}", out.display());
    }
    assert_eq!(files_under(&r), before);
    assert!(!r.join("losses").join("report").exists());

    // The default ROOT/_report and a new folder beside the root are fine.
    report(&store, &r.join("_report"), &[]).unwrap();
    let out = tmp.path().join("rep");
    report(&store, &out, &[]).unwrap();
    // The user's files inside the report's folder stay, through a report that removes
    // pages (a filter leaves tasks out) and one that draws them again.
    user_files(&out, &mine);
    report(&store, &out, &["model=a"]).unwrap();
    assert!(!out.join("t").join(id(1)).exists());
    report(&store, &out, &[]).unwrap();
    assert!(out.join("t").join(id(1)).join("index.html").is_file());
    for f in mine {
        assert!(out.join(f).is_file(), "{f} removed");
    }

    // A report of an older version (`_report.json`, no manifests): its task folders go,
    // the user's do not.
    let old = tmp.path().join("old");
    user_files(&old, &mine);
    std::fs::write(old.join("_report.json"), br#"{"version":2,"tasks":{}}"#).unwrap();
    std::fs::create_dir_all(old.join("t").join(id(99))).unwrap();
    std::fs::write(old.join("mad").join(format!("{:032x}.html", 7)), "old").unwrap();
    report(&store, &old, &[]).unwrap();
    assert!(!old.join("t").join(id(99)).exists());
    assert!(!old.join("mad").join(format!("{:032x}.html", 7)).exists());
    for f in mine {
        assert!(old.join(f).is_file(), "{f} removed");
    }
}

fn run(id: &str, spec: &str, outcome: Option<&str>) -> RunInfo {
    let mut r = RunInfo::new(id, spec);
    if let Some(o) = outcome {
        r.finish();
        r.outcome = Some(o.into());
    }
    r
}

#[test]
fn damaged_parts_are_named_and_hide_only_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("root");
    // Seeds 0, 1, 2, 10, 11: ordered as numbers, not as text (0, 1, 10, 11, 2).
    let seeds = [10, 2, 0, 11, 1];
    let tasks = (0..5).map(|i| metamer(i, seeds[i])).chain([mad(5)]);
    let store = root(&r, tasks.collect());
    store
        .write_run(&run("run-1", "spec A", Some("interrupted")))
        .unwrap();
    std::fs::write(r.join("_runs").join("broken.json"), "{").unwrap();
    let out = tmp.path().join("rep");
    let o = report(&store, &out, &[]).unwrap();
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    // One bad run record: named, the other run still shown.
    assert!(
        o.warnings.iter().any(|w| w.contains("_runs/broken.json")),
        "{:?}",
        o.warnings
    );
    assert!(index.contains("_runs&#x2f;broken.json") || index.contains("_runs/broken.json"));
    assert!(
        index.contains("run-1"),
        "the readable run's provenance is shown"
    );
    assert!(index.contains("ended before running every task"));
    // Seeds by number in the "By axis" table.
    let table = index.split("metamer: seed</h3>").nth(1).unwrap();
    let table = &table[..table.find("</table>").unwrap()];
    let values: Vec<&str> = table
        .split("<tr><td>")
        .skip(1)
        .map(|c| &c[..c.find("</td>").unwrap()])
        .collect();
    assert_eq!(values, ["0", "1", "2", "10", "11"]);
    assert_eq!(
        synthsweep_report::axis_value_order("8", "x"),
        std::cmp::Ordering::Less
    );

    // A later run of the same spec that ran every task: no resume note any more.
    store
        .write_run(&run("run-2", "spec A", Some("complete")))
        .unwrap();
    report(&store, &out, &[]).unwrap();
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(!index.contains("ended before running every task"));
    assert!(index.contains("Every recorded run finished."));

    // A truncated losses file: the pages of its batch's tasks name it, and do not blame
    // the root's age or show an empty loss chart.
    let losses = walk(&r.join("losses"));
    assert_eq!(losses.len(), 1);
    let name = losses[0].file_name().unwrap().to_str().unwrap().to_string();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&losses[0])
        .unwrap()
        .set_len(100)
        .unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    let o = report(&store, &out, &[]).unwrap();
    assert!(
        o.warnings.iter().any(|w| w.contains(&name)),
        "{:?}",
        o.warnings
    );
    let page = std::fs::read_to_string(out.join("t").join(id(0)).join("index.html")).unwrap();
    assert!(
        page.contains("could not be read") && page.contains(&name),
        "{page}"
    );
    assert!(!page.contains("since the report was added"), "{page}");
    assert!(!page.contains("no values recorded"), "{page}");
    // The MAD competition's page says which task's data was unreadable.
    let mad_pages: Vec<_> = walk(&out.join("mad"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect();
    assert_eq!(mad_pages.len(), 1);
    let html = std::fs::read_to_string(&mad_pages[0]).unwrap();
    assert!(
        html.contains("could not be read") && html.contains(&name),
        "{html}"
    );
}
