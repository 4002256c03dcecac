//! polars, pandas, pyarrow and DuckDB read a dataset the writer made, with no options, and
//! see the types of schemas/*.json (tests/python/check_tables.py).

use synthsweep_testkit::store as common;

use synthsweep_store::*;

/// A dataset with history: a killed flush, recovery, a re-run and a retry of failures.
pub fn messy_dataset(store: &Store, n: usize) {
    let mut w = common::big_writer(store, &Ledger::default(), "first");
    for i in 0..n / 2 {
        w.push(common::sample_result(i)).unwrap();
    }
    w.flush().unwrap();
    for i in n / 2..n {
        w.push(common::sample_result(i)).unwrap();
    }
    store.inject_fault(Some(FaultPoint::AfterDataFiles));
    assert!(w.flush().is_err());
    drop(w);

    let prepared = store.prepare(PrepareOptions::default()).unwrap();
    assert_eq!(prepared.recovery.orphan_files_deleted.len(), 4);
    let mut o = WriterOptions::new("second");
    o.max_tasks = 7;
    let mut w = store.writer(o, &prepared.ledger).unwrap();
    for i in 0..n {
        let r = common::sample_result(i);
        if !prepared.ledger.is_committed(&r.task.task_id) {
            w.push(r).unwrap();
        }
    }
    w.finish().unwrap();

    let prepared = store
        .prepare(PrepareOptions {
            retry_failed: true,
            ..Default::default()
        })
        .unwrap();
    assert!(prepared.uncommitted_failed > 0);
    let mut w = common::big_writer(store, &prepared.ledger, "third");
    for i in 0..n {
        let mut r = common::sample_result(i);
        if !prepared.ledger.is_committed(&r.task.task_id) {
            r.task.status = TaskStatus::Done;
            r.task.error = None;
            w.push(r).unwrap();
        }
    }
    w.finish().unwrap();
    let mut run = RunInfo::new("third", "spec");
    run.finish();
    store.write_run(&run).unwrap();
}

#[test]
fn python_readers_read_a_local_dataset_with_the_schema_types() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    messy_dataset(&store, 30);
    let out = common::check_tables(dir.path().to_str().unwrap(), &["--expect-tasks", "30"], &[]);
    for reader in ["polars:", "pandas:", "pyarrow:"] {
        assert!(out.contains(reader), "{reader} did not run:\n{out}");
    }
    assert!(out.contains(" 0 failed"), "{out}");
    println!("{out}");
}

#[test]
fn the_checker_catches_a_wrong_type_and_rows_of_uncommitted_tasks() {
    // The check is only worth something if it fails: a batch whose tasks file is missing
    // (before recovery) must be reported.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let mut w = common::big_writer(&store, &Ledger::default(), "x");
    w.push(common::sample_result(1)).unwrap();
    w.flush().unwrap();
    w.push(common::sample_result(2)).unwrap();
    store.inject_fault(Some(FaultPoint::AfterDataFiles));
    assert!(w.flush().is_err());
    let out = std::process::Command::new(common::venv_python())
        .arg(common::workspace_root().join("tests/python/check_tables.py"))
        .arg(dir.path())
        .args(["--readers", "polars,pyarrow"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("rows of tasks not in `tasks`"), "{text}");
}
