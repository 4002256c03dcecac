//! A writer groups results into few, bounded files.

use synthsweep_testkit::store as common;

use std::time::Duration;

use synthsweep_store::*;

fn small_result(i: usize) -> TaskResult {
    let mut r = common::sample_result(i);
    r.images.clear();
    r
}

#[test]
fn a_thousand_small_results_make_a_few_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let opts = WriterOptions::new("many");
    assert_eq!(
        (opts.max_tasks, opts.max_bytes, opts.max_age),
        (256, 64 << 20, Duration::from_secs(30))
    );
    let mut w = store.writer(opts, &Ledger::default()).unwrap();
    let mut flushed = Vec::new();
    for i in 0..1000 {
        if let Some(b) = w.push(small_result(i)).unwrap() {
            flushed.push(b.tasks);
        }
    }
    assert_eq!(flushed, [256, 256, 256]);
    assert_eq!(w.pending(), 232);
    let stats = w.finish().unwrap();
    assert_eq!((stats.batches, stats.tasks), (4, 1000));
    for t in Table::ALL {
        assert_eq!(common::table_files(dir.path(), t.name()).len(), 4, "{t}");
    }
    assert_eq!(store.ledger().unwrap().len(), 1000);
}

#[test]
fn the_byte_limit_bounds_each_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let mut r = common::sample_result(0);
    r.images[0].channels = 1;
    r.images[0].height = 100;
    r.images[0].width = 100;
    r.images[0].pixels = Some(vec![0.5; 10_000]);
    r.task.task_id = "big-0000".into();
    let one = r.approx_bytes();
    let mut opts = WriterOptions::new("bytes");
    opts.max_bytes = 10 * one;
    let mut w = store.writer(opts, &Ledger::default()).unwrap();
    let mut sizes = Vec::new();
    for i in 0..35 {
        let mut r = r.clone();
        r.task.task_id = format!("big-{i:04}");
        if let Some(b) = w.push(r).unwrap() {
            sizes.push(b.tasks);
        }
    }
    assert_eq!(sizes, [10, 10, 10]);
    w.finish().unwrap();
    assert_eq!(common::table_files(dir.path(), "images").len(), 4);
}

#[test]
fn the_age_limit_flushes_on_tick() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let mut opts = WriterOptions::new("age");
    opts.max_age = Duration::from_millis(200);
    let mut w = store.writer(opts, &Ledger::default()).unwrap();
    assert!(w.push(small_result(0)).unwrap().is_none());
    assert!(w.tick().unwrap().is_none());
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(w.tick().unwrap().unwrap().tasks, 1);
    assert!(
        w.tick().unwrap().is_none(),
        "nothing buffered, nothing to flush"
    );
    assert_eq!(store.ledger().unwrap().len(), 1);
}

#[test]
fn one_task_per_file_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let mut opts = WriterOptions::new("each");
    opts.max_tasks = 1;
    let mut w = store.writer(opts, &Ledger::default()).unwrap();
    for i in 0..3 {
        assert_eq!(w.push(small_result(i)).unwrap().unwrap().tasks, 1);
    }
    assert_eq!(common::table_files(dir.path(), "tasks").len(), 3);
}

#[test]
fn writers_of_one_run_never_share_a_batch_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    // Two writers, same run and same tag (as two processes misconfigured alike would be).
    let mut a = common::big_writer(&store, &Ledger::default(), "same");
    let mut b = common::big_writer(&store, &Ledger::default(), "same");
    a.push(small_result(0)).unwrap();
    b.push(small_result(1)).unwrap();
    let (ba, bb) = (a.flush().unwrap().unwrap(), b.flush().unwrap().unwrap());
    assert_ne!(ba.batch_id, bb.batch_id);
    assert_eq!(store.ledger().unwrap().len(), 2);
}

#[test]
fn writers_on_many_threads_commit_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut o = WriterOptions::new("threads");
                o.writer_tag = format!("p0-w{t}");
                o.max_tasks = 7;
                let mut w = store.writer(o, &Ledger::default()).unwrap();
                for i in (t..100).step_by(4) {
                    w.push(small_result(i)).unwrap();
                }
                w.finish().unwrap()
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap().tasks).sum();
    assert_eq!(total, 100);
    let ledger = store.ledger().unwrap();
    assert_eq!(ledger.len(), 100);
    assert!(ledger.duplicates.is_empty());
    assert!(ledger
        .batches()
        .keys()
        .all(|b| b.starts_with("threads-p0-w")));
}
