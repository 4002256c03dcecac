//! Incremental reports with per-batch manifests on disk: a grown root draws only the new
//! batch; an uncommitted task's page goes and comes back when it is committed again; a task
//! committed twice shows once; a filter removes and brings back pages; a MAD competition's
//! page is drawn again when its tasks change; a report of an earlier version is cleaned up.
//! Real store, real files (no libtorch).
use std::path::Path;

mod common;

use common::{commit, id, mad, metamer, try_report};
use synthsweep_report::ReportOutcome;
use synthsweep_store::*;

fn report(store: &Store, out: &Path, filters: &[&str]) -> ReportOutcome {
    try_report(store, out, filters, 4).unwrap()
}

fn pages(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out.join("t"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Rows of the task table over all its pages.
fn table_rows(out: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for n in 1.. {
        let f = if n == 1 {
            "tasks.html".to_string()
        } else {
            format!("tasks-{n}.html")
        };
        let Ok(html) = std::fs::read_to_string(out.join(f)) else {
            break;
        };
        for part in html.split("<td><a href=\"t/").skip(1) {
            rows.push(part[..64].to_string());
        }
    }
    rows
}

/// Every file a MAD competition's page names is there (images of its tasks, its charts).
fn check_mad_links(out: &Path) {
    for e in std::fs::read_dir(out.join("mad")).unwrap() {
        let page = e.unwrap().path();
        if page.extension().is_none_or(|x| x != "html") {
            continue;
        }
        let html = std::fs::read_to_string(&page).unwrap();
        for attr in ["src=\"", "href=\""] {
            for part in html.split(attr).skip(1) {
                let target = part[..part.find('"').unwrap()].replace("&#x2f;", "/");
                if target.starts_with("data:") || target.starts_with('#') {
                    continue;
                }
                assert!(
                    page.parent().unwrap().join(&target).is_file(),
                    "{}: {target} missing",
                    page.display()
                );
            }
        }
    }
}

fn ids(range: impl Iterator<Item = usize>) -> Vec<String> {
    let mut v: Vec<String> = range.map(id).collect();
    v.sort();
    v
}

#[test]
fn pages_follow_the_root_with_manifests_per_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let out = tmp.path().join("report");
    let store = Store::open(&OutputRoot::parse(root.to_str().unwrap()).unwrap()).unwrap();
    store.write_run(&RunInfo::new("r1", "name = 's'")).unwrap();
    // 6 metamers in 2 batches, the 4 MAD tasks of one competition in a third.
    commit(&store, (0..6).map(|i| metamer(i, 1.0)).collect(), 3, None);
    commit(
        &store,
        vec![
            mad(10, "mse", "min"),
            mad(11, "mse", "max"),
            mad(12, "ssim", "min"),
            mad(13, "ssim", "max"),
        ],
        4,
        None,
    );
    let all: Vec<String> = ids((0..6).chain(10..14));
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!((o.tasks, o.drawn, o.kept, o.batches_read), (10, 10, 0, 3));
    assert_eq!(pages(&out), all);
    assert_eq!(std::fs::read_dir(out.join("_manifest")).unwrap().count(), 3);
    let mut rows = table_rows(&out);
    rows.sort();
    assert_eq!(rows, all);
    let mad_pages = |out: &Path| -> Vec<String> {
        std::fs::read_dir(out.join("mad"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "html"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    };
    let m = mad_pages(&out);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].matches("final.png").count(), 4, "{}", m[0]);
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("MAD competitions") && index.contains("4/4"));
    // Durations 1..6 and 11..14 s: the median (rank 5 from 0, of 10) is 6 s.
    assert!(index.contains("median 6.00 s, max 14.00 s"), "{index}");

    // Nothing new: nothing drawn, no data read.
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!((o.tasks, o.drawn, o.kept, o.batches_read), (10, 0, 10, 0));

    // A grown root: only the new batch is drawn.
    commit(&store, vec![metamer(6, 2.0), metamer(7, 2.0)], 8, None);
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!((o.tasks, o.drawn, o.kept, o.batches_read), (12, 2, 10, 1));
    let all: Vec<String> = ids((0..8).chain(10..14));
    assert_eq!(pages(&out), all);

    // Uncommitted (as --retry-failed does): the page goes, the MAD page is drawn again
    // without the task; committed again: drawn again from its new batch.
    assert_eq!(store.uncommit(&[id(1), id(11)]).unwrap(), 2);
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!((o.tasks, o.drawn), (10, 0));
    let left: Vec<String> = ids([0, 2, 3, 4, 5, 6, 7, 10, 12, 13].into_iter());
    assert_eq!(pages(&out), left);
    let m = mad_pages(&out);
    assert_eq!(m[0].matches("final.png").count(), 3);
    assert!(!m[0].contains(&id(11)));
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("3/4"));
    commit(
        &store,
        vec![metamer(1, 3.0), mad(11, "mse", "max")],
        8,
        None,
    );
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!((o.tasks, o.drawn, o.kept), (12, 2, 10));
    assert_eq!(pages(&out), all);
    assert_eq!(mad_pages(&out)[0].matches("final.png").count(), 4);

    // A task committed twice (a writer with an old ledger, before recovery resolves it):
    // shown once, its page drawn from the batch holding its latest row.
    let stale = Ledger::default();
    commit(&store, vec![metamer(0, 5.0)], 8, Some(&stale));
    let twice = store.read_tasks().unwrap();
    assert_eq!(twice.iter().filter(|t| t.task_id == id(0)).count(), 2);
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!(o.tasks, 12);
    let mut rows = table_rows(&out);
    rows.sort();
    assert_eq!(rows, all);
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!((o.tasks, o.drawn, o.kept), (12, 0, 12));

    // A filter removes the other pages; without it they are drawn again.
    let o = report(&store, &out, &["model=a"]);
    check_mad_links(&out);
    assert_eq!(o.tasks, 4);
    assert_eq!(pages(&out), ids([0, 2, 4, 6].into_iter()));
    // No MAD task has a model: no competition, its page and task list removed.
    assert_eq!(std::fs::read_dir(out.join("mad")).unwrap().count(), 0);
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!((o.tasks, o.drawn, o.kept), (12, 8, 4));
    assert_eq!(pages(&out), all);

    // A report of the version before per-batch manifests: its manifest and the pages of
    // tasks not in the root are removed, every page drawn again.
    std::fs::remove_dir_all(out.join("_manifest")).unwrap();
    std::fs::write(out.join("_report.json"), br#"{"version":2,"tasks":{}}"#).unwrap();
    std::fs::create_dir_all(out.join("t").join(id(99))).unwrap();
    let o = report(&store, &out, &[]);
    check_mad_links(&out);
    assert_eq!((o.tasks, o.drawn, o.kept), (12, 12, 0));
    assert_eq!(pages(&out), all);
    assert!(!out.join("_report.json").exists());
}

/// A task's rows missing from its committed batch are said on the page and in a warning,
/// never drawn as a page that silently lacks its images: a batch whose images file is gone
/// (a page without figures, drawn again by the next report, which draws it whole once the
/// file is back), and a done task whose images file holds no row of it.
#[test]
fn lost_rows_are_a_warning_and_a_note_not_a_page_silently_without_images() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().join("root"))).unwrap();
    let out = dir.path().join("report");
    commit(&store, vec![metamer(0, 0.5), metamer(1, 0.25)], 1, None);
    let mut bare = metamer(2, 0.125);
    bare.images.clear();
    commit(&store, vec![bare], 1, None);
    let page = |i: usize| {
        std::fs::read_to_string(out.join("t").join(id(i)).join("index.html"))
            .unwrap()
            .replace("&#x2f;", "/")
    };
    // Task 0's batch loses its images file.
    let batch = store
        .read_tasks()
        .unwrap()
        .into_iter()
        .find(|t| t.task_id == id(0))
        .unwrap()
        .batch_id;
    let lost = dir.path().join(format!("root/images/part-{batch}.parquet"));
    let kept = dir.path().join("kept.parquet");
    std::fs::rename(&lost, &kept).unwrap();
    let o = report(&store, &out, &[]);
    assert_eq!(o.drawn, 3);
    let lost_task = 0;
    assert!(
        page(0).contains(&format!("batch {batch} could not be read")),
        "{}",
        page(0)
    );
    assert!(
        page(lost_task).contains(&format!("images/part-{batch}.parquet missing")),
        "{}",
        page(lost_task)
    );
    assert!(
        !page(lost_task).contains("The tables of this root hold no"),
        "a note about older roots"
    );
    assert!(!out
        .join("t")
        .join(id(lost_task))
        .join("target.png")
        .exists());
    assert!(out
        .join("t")
        .join(id(1 - lost_task))
        .join("target.png")
        .is_file());
    assert!(
        page(2).contains("The images table holds no row of this task"),
        "{}",
        page(2)
    );
    let w = o.warnings.join("\n");
    assert!(
        w.contains(&format!("data files of batch {batch} unreadable"))
            && w.contains(&format!(
                "images/part-{batch}.parquet missing while tasks/part-{batch}.parquet is there"
            )),
        "{w}"
    );
    assert!(
        w.contains(&format!("1 done task page(s) drawn without images: the images table holds no row of them (first: task {}", id(2))),
        "{w}"
    );
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("drawn without images"));
    // The file back: the page drawn whole (it was not recorded as drawn).
    std::fs::rename(&kept, &lost).unwrap();
    let o = report(&store, &out, &[]);
    assert_eq!((o.drawn, o.kept), (1, 2), "{:?}", o.warnings);
    assert!(out
        .join("t")
        .join(id(lost_task))
        .join("target.png")
        .is_file());
    assert!(!page(lost_task).contains("could not be read"));
}
