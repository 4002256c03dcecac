//! The commit protocol: a kill at any point leaves every task fully visible or not at all,
//! recovery removes the debris, and a re-run commits each task exactly once.

use synthsweep_testkit::store as common;

use std::path::Path;

use synthsweep_store::*;

fn open(dir: &Path) -> Store {
    Store::open(&OutputRoot::Local(dir.into())).unwrap()
}

/// Runs tasks 0..n on the root, skipping committed ones, like the executor would.
fn run(store: &Store, n: usize, retry_failed: bool) -> (Prepared, WriterStats) {
    let prepared = store
        .prepare(PrepareOptions {
            retry_failed,
            ..Default::default()
        })
        .unwrap();
    let mut w = common::big_writer(store, &prepared.ledger, "rerun");
    for i in 0..n {
        let r = common::sample_result(i);
        if !prepared.ledger.is_committed(&r.task.task_id) {
            w.push(r).unwrap();
        }
    }
    let stats = w.finish().unwrap();
    (prepared, stats)
}

/// Every table's task ids, checked: each task in `tasks` once, and no data row of a task
/// that is not in `tasks`.
fn assert_consistent(store: &Store) -> Vec<String> {
    let d = store.read_dataset().unwrap();
    let ids = common::unique_task_ids(&d);
    let committed: std::collections::HashSet<&String> = ids.iter().collect();
    for id in d
        .losses
        .iter()
        .map(|r| &r.task_id)
        .chain(d.images.iter().map(|r| &r.task_id))
        .chain(d.scores.iter().map(|r| &r.task_id))
        .chain(d.eigen.iter().map(|r| &r.task_id))
    {
        assert!(committed.contains(id), "rows of uncommitted task {id}");
    }
    ids
}

fn kill_during_flush(point: FaultPoint) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut w = common::big_writer(&store, &Ledger::default(), "killed");
    for i in 0..10 {
        w.push(common::sample_result(i)).unwrap();
    }
    store.inject_fault(Some(point));
    match w.flush() {
        Err(StoreError::Injected(p)) => assert_eq!(p, point),
        other => panic!("expected the injected fault, got {other:?}"),
    }
    drop(w); // the process is gone

    // Debris: data files, no tasks file.
    assert!(common::table_files(dir.path(), "tasks").is_empty());
    assert!(!common::table_files(dir.path(), "losses").is_empty());
    // Even before recovery, nothing is committed.
    let store = open(dir.path());
    assert!(store.ledger().unwrap().is_empty());
    assert!(store.read_tasks().unwrap().is_empty());

    // Recovery removes the orphans; the re-run commits all ten exactly once.
    let (prepared, stats) = run(&store, 10, false);
    assert!(prepared.ledger.is_empty());
    let orphans = &prepared.recovery.orphan_files_deleted;
    let want = if point == FaultPoint::AfterFirstDataFile {
        1
    } else {
        4
    };
    assert_eq!(orphans.len(), want, "{orphans:?}");
    assert!(
        orphans.iter().all(|f| f.contains("part-killed-")),
        "{orphans:?}"
    );
    assert_eq!(stats.tasks, 10);
    assert_eq!(assert_consistent(&store).len(), 10);
    for t in Table::ALL {
        assert_eq!(common::table_files(dir.path(), t.name()).len(), 1, "{t}");
    }
    // A third run finds everything committed and writes nothing.
    let (prepared, stats) = run(&store, 10, false);
    assert!(prepared.recovery.is_clean(), "{:?}", prepared.recovery);
    assert_eq!(prepared.ledger.len(), 10);
    assert_eq!(stats, WriterStats::default());
}

#[test]
fn kill_after_the_data_files_commits_nothing() {
    kill_during_flush(FaultPoint::AfterDataFiles);
}

#[test]
fn kill_after_the_first_data_file_commits_nothing() {
    kill_during_flush(FaultPoint::AfterFirstDataFile);
}

#[test]
fn a_kill_between_two_flushes_keeps_the_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut o = WriterOptions::new("half");
    o.max_tasks = 5;
    let mut w = store.writer(o, &Ledger::default()).unwrap();
    for i in 0..5 {
        w.push(common::sample_result(i)).unwrap();
    }
    store.inject_fault(Some(FaultPoint::AfterDataFiles));
    for i in 5..9 {
        w.push(common::sample_result(i)).unwrap();
    }
    assert!(matches!(
        w.push(common::sample_result(9)),
        Err(StoreError::Injected(_))
    ));
    drop(w);
    let store = open(dir.path());
    assert_eq!(store.ledger().unwrap().len(), 5);
    let (prepared, stats) = run(&store, 10, false);
    assert_eq!(prepared.recovery.orphan_files_deleted.len(), 4);
    assert_eq!(stats.tasks, 5);
    assert_eq!(assert_consistent(&store).len(), 10);
}

#[test]
fn a_committed_task_is_refused_not_committed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    run(&store, 3, false);
    let ledger = store.ledger().unwrap();
    let mut w = common::big_writer(&store, &ledger, "again");
    match w.push(common::sample_result(1)) {
        Err(StoreError::AlreadyCommitted { task_id, .. }) => assert_eq!(task_id, "task-00001"),
        other => panic!("{other:?}"),
    }
    w.push(common::sample_result(3)).unwrap();
    assert!(
        w.push(common::sample_result(3)).is_err(),
        "twice in the buffer"
    );
    w.flush().unwrap();
    assert!(
        w.push(common::sample_result(3)).is_err(),
        "committed by this writer"
    );
    w.finish().unwrap();
    assert_eq!(assert_consistent(&store).len(), 4);
}

#[test]
fn a_failed_flush_is_retried_under_the_same_batch_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut w = common::big_writer(&store, &Ledger::default(), "retry");
    for i in 0..3 {
        w.push(common::sample_result(i)).unwrap();
    }
    store.inject_fault(Some(FaultPoint::AfterDataFiles));
    assert!(w.flush().is_err());
    assert_eq!(w.pending(), 3);
    w.push(common::sample_result(3)).unwrap();
    let first = w.flush().unwrap().unwrap();
    assert_eq!(first.tasks, 3, "the retry commits the same results");
    let second = w.flush().unwrap().unwrap();
    assert_eq!(second.tasks, 1);
    let batches = common::table_files(dir.path(), "losses");
    assert_eq!(
        batches.len(),
        2,
        "{batches:?}: the failed attempt's files were reused"
    );
    assert!(batches[0].ends_with("-00001.parquet"));
    assert_eq!(assert_consistent(&store).len(), 4);
}

#[test]
fn retry_failed_replaces_the_failed_rows_and_each_task_stays_once_in_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    run(&store, 20, false);
    let ledger = store.ledger().unwrap();
    let failed = ledger.ids_with(TaskStatus::Failed);
    assert_eq!(failed, ["task-00007", "task-00017"]);

    // Without --retry-failed, nothing is re-run.
    let (_, stats) = run(&store, 20, false);
    assert_eq!(stats.tasks, 0);

    // The retry succeeds this time.
    let prepared = store
        .prepare(PrepareOptions {
            retry_failed: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(prepared.uncommitted_failed, 2);
    assert_eq!(prepared.ledger.len(), 18);
    let mut w = common::big_writer(&store, &prepared.ledger, "retry");
    for i in [7, 17] {
        let mut r = common::sample_result(i);
        r.task.status = TaskStatus::Done;
        r.task.error = None;
        r.losses.truncate(2);
        w.push(r).unwrap();
    }
    w.finish().unwrap();

    let ids = assert_consistent(&store);
    assert_eq!(ids.len(), 20);
    let d = store.read_dataset().unwrap();
    let t7 = d.tasks.iter().find(|t| t.task_id == "task-00007").unwrap();
    assert_eq!((t7.status, t7.run_id.as_str()), (TaskStatus::Done, "retry"));
    // Only the new attempt's rows: 2 losses, not the failed attempt's 5 as well.
    assert_eq!(
        d.losses
            .iter()
            .filter(|l| l.task_id == "task-00007")
            .count(),
        2
    );
    assert_eq!(store.summary().unwrap().failed, 0);
}

#[test]
fn a_kill_inside_an_uncommit_is_finished_by_recovery() {
    for point in [
        FaultPoint::AfterUncommitIntent,
        FaultPoint::AfterUncommitTasksFile,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        run(&store, 20, false);
        store.inject_fault(Some(point));
        let err = store
            .prepare(PrepareOptions {
                retry_failed: true,
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Injected(p) if p == point));
        assert_eq!(common::files_under(&dir.path().join("_txn")).len(), 1);

        let store = open(dir.path());
        let prepared = store.prepare(PrepareOptions::default()).unwrap();
        assert_eq!(prepared.recovery.intents_replayed, 1, "{point:?}");
        assert_eq!(
            prepared.ledger.len(),
            18,
            "{point:?}: the failed ones are uncommitted"
        );
        assert!(common::files_under(&dir.path().join("_txn")).is_empty());
        assert_eq!(assert_consistent(&store).len(), 18);
        // The retry run now runs exactly the two.
        let (_, stats) = run(&store, 20, false);
        assert_eq!(stats.tasks, 2);
        assert_eq!(assert_consistent(&store).len(), 20);
    }
}

#[test]
fn uncommitting_a_whole_batch_removes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    run(&store, 4, false);
    let ids: Vec<String> = (0..4).map(|i| format!("task-{i:05}")).collect();
    assert_eq!(store.uncommit(&ids).unwrap(), 4);
    assert_eq!(store.uncommit(&ids).unwrap(), 0);
    assert!(common::files_under(dir.path())
        .iter()
        .all(|f| f.starts_with("_runs/")));
}

#[test]
fn a_task_found_in_two_batches_is_kept_once() {
    // Only a bug or a hand-made copy can do this; recovery must still leave one row.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut w = common::big_writer(&store, &Ledger::default(), "a");
    w.push(common::sample_result(7)).unwrap(); // failed
    w.push(common::sample_result(1)).unwrap();
    w.finish().unwrap();
    let mut w = common::big_writer(&store, &Ledger::default(), "b");
    let mut r = common::sample_result(7);
    r.task.status = TaskStatus::Done;
    w.push(r).unwrap();
    w.finish().unwrap();
    let ledger = store.ledger().unwrap();
    assert_eq!(ledger.duplicates.len(), 1);
    let report = store.recover(RecoverOptions::default()).unwrap();
    assert_eq!(report.duplicates_resolved, 1);
    let ledger = store.ledger().unwrap();
    assert!(ledger.duplicates.is_empty());
    assert_eq!(ledger.status("task-00007"), Some(TaskStatus::Done));
    assert_eq!(assert_consistent(&store).len(), 2);
}

#[test]
fn recovery_spares_files_younger_than_min_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut w = common::big_writer(&store, &Ledger::default(), "inflight");
    w.push(common::sample_result(0)).unwrap();
    store.inject_fault(Some(FaultPoint::AfterDataFiles));
    assert!(w.flush().is_err());
    let young = RecoverOptions {
        min_age: std::time::Duration::from_secs(3600),
    };
    assert!(store.recover(young).unwrap().is_clean());
    assert_eq!(common::table_files(dir.path(), "losses").len(), 1);
    // The writer was alive after all: its retry commits the batch.
    w.finish().unwrap();
    assert_eq!(assert_consistent(&store).len(), 1);
    assert!(store.recover(RecoverOptions::default()).unwrap().is_clean());
}

#[test]
fn stray_files_in_table_folders_and_staging_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    run(&store, 2, false);
    std::fs::write(dir.path().join("losses/notes.txt"), "x").unwrap();
    std::fs::create_dir_all(dir.path().join("_staging")).unwrap();
    std::fs::write(dir.path().join("_staging/abc-part-x.parquet#1"), "x").unwrap();
    let report = store.recover(RecoverOptions::default()).unwrap();
    assert_eq!(report.orphan_files_deleted, ["losses/notes.txt"]);
    assert_eq!(report.staging_files_deleted, 1);
    assert_eq!(assert_consistent(&store).len(), 2);
}

/// Not a test by itself: the writer process of `sigkill_at_random_moments...`, which runs
/// this test binary again with `STORE_KILL_CHILD_ROOT` set.
#[test]
fn child_writer_for_the_kill_test() {
    let Ok(root) = std::env::var("STORE_KILL_CHILD_ROOT") else {
        return;
    };
    let store = open(Path::new(&root));
    let ledger = store.ledger().unwrap();
    let mut o = WriterOptions::new("child");
    o.max_tasks = 3;
    let mut w = store.writer(o, &ledger).unwrap();
    for i in 0..KILL_TASKS {
        let r = common::sample_result(i);
        if !ledger.is_committed(&r.task.task_id) {
            w.push(r).unwrap();
        }
    }
    w.finish().unwrap();
}

const KILL_TASKS: usize = 300;

#[test]
fn sigkill_at_random_moments_never_leaves_a_partial_task() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut kills = 0;
    for round in 0..12 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "child_writer_for_the_kill_test",
                "--test-threads=1",
            ])
            .env("STORE_KILL_CHILD_ROOT", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the child's life (it takes a few hundred ms).
        std::thread::sleep(std::time::Duration::from_millis(15 + 37 * round));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();

        let store = open(dir.path());
        let prepared = store.prepare(PrepareOptions::default()).unwrap();
        let ids = assert_consistent(&store);
        assert_eq!(ids.len(), prepared.ledger.len());
        println!(
            "round {round}: {} committed, {} orphan files removed",
            ids.len(),
            prepared.recovery.orphan_files_deleted.len()
        );
        // Every batch complete: a committed task has all its rows.
        let d = store.read_dataset().unwrap();
        assert_eq!(d.losses.len(), 5 * ids.len(), "round {round}");
        assert_eq!(d.scores.len(), ids.len(), "round {round}");
        if ids.len() == KILL_TASKS {
            break;
        }
    }
    assert!(
        kills > 0,
        "the child always finished before the kill: nothing was tested"
    );
    let store = open(dir.path());
    run(&store, KILL_TASKS, false);
    assert_eq!(assert_consistent(&store).len(), KILL_TASKS);
}
