//! Many writers on one local root: create-if-absent races, claims, leases, takeovers after
//! a writer dies, recovery that spares the living, and the commit path's refusals.
//! Writers are real processes (this test binary run again) started together, or sessions
//! on separate `Store`s within one process where a test needs to control the timing.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_each_task_once, ClaimingWriter};
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use synthsweep_store::*;

fn open(dir: &Path) -> Store {
    Store::open(&OutputRoot::Local(dir.to_path_buf())).unwrap()
}

fn session(store: &Store, tag: &str, lease: Duration) -> WriterInfo {
    store
        .start_session(
            WriterIdentity {
                run_id: new_run_id(),
                tag: tag.into(),
                role: "test".into(),
            },
            LeaseOptions::with_length(lease),
        )
        .unwrap()
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("task-{i:05}")).collect()
}

fn writer(store: &Store, ledger: &Ledger, batch: usize) -> Writer {
    let mut o = WriterOptions::new("t");
    o.max_tasks = batch;
    store.writer(o, ledger).unwrap()
}

/// Not a test by itself: a writer process of the tests below (this binary run again with
/// `MANY_WRITERS_CHILD=<root>;<ClaimingWriter>`), or a process racing to create one key
/// (`MANY_WRITERS_RACE=<root>;<key>;<name>`).
#[test]
fn child_process() {
    if let Ok(v) = std::env::var("MANY_WRITERS_CHILD") {
        let (root, cfg) = v.split_once(';').unwrap();
        let n = ClaimingWriter::decode(cfg).run(&open(Path::new(root)));
        println!("\nCOMMITTED {n}");
    }
    if let Ok(v) = std::env::var("MANY_WRITERS_RACE") {
        let p: Vec<&str> = v.split(';').collect();
        let fs = object_store::local::LocalFileSystem::new_with_prefix(p[0]).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        wait_until(p[3].parse().unwrap());
        let won = rt.block_on(race_once(&fs, p[1], p[2]));
        println!("{}", if won { "WON" } else { "LOST" });
    }
}

/// Sleeps until this Unix time in milliseconds: racers started apart go at one moment.
fn wait_until(unix_ms: u128) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    if unix_ms > now {
        std::thread::sleep(Duration::from_millis((unix_ms - now) as u64));
    }
}

fn in_ms(ms: u128) -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + ms
}

async fn race_once(store: &dyn ObjectStore, key: &str, name: &str) -> bool {
    let r = store
        .put_opts(
            &object_store::path::Path::from(key),
            PutPayload::from(name.as_bytes().to_vec()),
            PutOptions::from(PutMode::Create),
        )
        .await;
    match r {
        Ok(_) => true,
        Err(object_store::Error::AlreadyExists { .. }) => false,
        Err(e) => panic!("create-if-absent failed: {e}"),
    }
}

fn child(args_env: (&str, String)) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(args_env.0, args_env.1)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

#[test]
fn create_if_absent_on_local_disk_has_one_winner_among_processes_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    for key in 0..3 {
        let key = format!("_claims/k{key}/g000000");
        let go = in_ms(700);
        // 8 processes started together...
        let kids: Vec<_> = (0..8)
            .map(|i| {
                child((
                    "MANY_WRITERS_RACE",
                    format!("{};{key};p{i};{go}", dir.path().display()),
                ))
                .spawn()
                .unwrap()
            })
            .collect();
        // ... and 8 threads of this one.
        let fs = std::sync::Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
        );
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (fs, key) = (fs.clone(), key.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    wait_until(go);
                    rt.block_on(race_once(fs.as_ref(), &key, &format!("t{i}")))
                })
            })
            .collect();
        let mut winners: Vec<String> = threads
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| t.join().unwrap().then(|| format!("t{i}")))
            .collect();
        for (i, k) in kids.into_iter().enumerate() {
            let out = k.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            if String::from_utf8_lossy(&out.stdout).contains("WON") {
                winners.push(format!("p{i}"));
            }
        }
        assert_eq!(winners.len(), 1, "one winner among 16 racers: {winners:?}");
        let content = std::fs::read_to_string(dir.path().join(&key)).unwrap();
        assert_eq!(content, winners[0], "the key holds the winner's content");
    }
}

/// Runs `n` claiming writer processes started together on one root (plus `extra` started
/// `extra_after` later), while this process reads the tasks table over and over: each
/// read must list every task at most once. Returns each writer's output.
fn writers_together(
    dir: &Path,
    cfgs: &[ClaimingWriter],
    late: Option<(Duration, ClaimingWriter)>,
) -> Vec<std::process::Output> {
    let spawn = |c: &ClaimingWriter| {
        child((
            "MANY_WRITERS_CHILD",
            format!("{};{}", dir.display(), c.encode()),
        ))
        .spawn()
        .unwrap()
    };
    let mut kids: Vec<_> = cfgs.iter().map(spawn).collect();
    let started = Instant::now();
    let mut late = late;
    let reader = open(dir);
    let mut reads = 0;
    loop {
        if let Some((after, c)) = &late {
            if started.elapsed() >= *after {
                kids.push(spawn(c));
                late = None;
            }
        }
        if let Ok(rows) = reader.read_tasks() {
            let mut ids: Vec<&str> = rows.iter().map(|r| r.task_id.as_str()).collect();
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), n, "a reader saw a task twice");
            reads += 1;
        }
        if late.is_none() && kids.iter_mut().all(|k| k.try_wait().unwrap().is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reads > 3, "the reader looked only {reads} times");
    kids.into_iter()
        .map(|k| k.wait_with_output().unwrap())
        .collect()
}

fn cfg(tag: &str, tasks: usize, group: usize, batch: usize) -> ClaimingWriter {
    ClaimingWriter {
        tasks,
        group,
        batch,
        tag: tag.into(),
        lease: Duration::from_secs(5),
        task_ms: 2,
    }
}

#[test]
fn writers_started_together_commit_every_task_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfgs: Vec<ClaimingWriter> = (0..6).map(|i| cfg(&format!("s{i}"), 120, 4, 3)).collect();
    let outs = writers_together(
        dir.path(),
        &cfgs,
        Some((Duration::from_millis(150), cfg("late", 120, 8, 1))),
    );
    let mut counts = Vec::new();
    for o in &outs {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "a writer failed: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let n = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("COMMITTED "))
            .unwrap_or_else(|| panic!("no count in the writer's output: {text}"));
        counts.push(n.parse::<usize>().unwrap());
    }
    let total: usize = counts.iter().sum();
    let store = open(dir.path());
    let ids = assert_each_task_once(&store);
    assert_eq!(ids.len(), 120);
    assert_eq!(
        total, 120,
        "the writers committed 120 tasks between them, no more"
    );
    let busy = counts.iter().filter(|n| **n > 0).count();
    assert!(
        busy >= 2,
        "only {busy} writer(s) did any work ({counts:?}): no overlap was tested"
    );
    // Nothing left over: no orphan, no staging file, no lease, no lock.
    assert!(store.recover(RecoverOptions::default()).unwrap().is_clean());
    for t in ["losses", "eigen", "images", "scores", "tasks"] {
        assert_eq!(
            common::table_files(dir.path(), t).len(),
            common::table_files(dir.path(), "tasks").len()
        );
    }
    assert!(common::files_under(&dir.path().join("_staging")).is_empty());
    assert!(common::files_under(&dir.path().join("_leases")).is_empty());
}

#[test]
fn a_dead_writers_claims_are_taken_over_once_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    // A claims 10 tasks, commits 4 of them, writes the data files of 2 more, then "dies".
    let a = open(dir.path());
    session(&a, "a", Duration::from_millis(1500));
    let prepared = a.prepare(PrepareOptions::default()).unwrap();
    assert_eq!(a.claim(&ids(0..10)).unwrap(), vec![Claim::Ours; 10]);
    let mut w = writer(&a, &prepared.ledger, 100);
    for i in 0..4 {
        w.push(common::sample_result(i)).unwrap();
    }
    w.flush().unwrap();
    for i in 4..6 {
        w.push(common::sample_result(i)).unwrap();
    }
    a.inject_fault(Some(FaultPoint::AfterDataFiles));
    assert!(w.flush().is_err());
    a.abandon_session();

    // B, alive, sees A's claims as held while A's lease runs, and spares its files.
    let b = open(dir.path());
    session(&b, "b", Duration::from_secs(60));
    let r = b.prepare(PrepareOptions::default()).unwrap();
    assert!(
        r.recovery.orphan_files_deleted.is_empty(),
        "{:?}",
        r.recovery
    );
    assert!(r.recovery.spared_live >= 4, "{:?}", r.recovery);
    let claims = b.claim(&ids(0..12)).unwrap();
    assert!(
        claims[..10].iter().all(|c| matches!(c, Claim::Held { .. })),
        "{claims:?}"
    );
    assert_eq!(claims[10..], [Claim::Ours, Claim::Ours]);
    let act = b.activity().unwrap();
    assert_eq!(act.writers.len(), 2);
    assert_eq!(act.claimed.len(), 12 - 4, "{act}");

    // Once A's lease has expired: its committed tasks stay committed (not run again), the
    // others are B's, and recovery removes A's orphans and its lease.
    std::thread::sleep(Duration::from_millis(1700));
    let act = b.activity().unwrap();
    assert_eq!(act.stale.len(), 1, "{act}");
    let claims = b.claim(&ids(0..10)).unwrap();
    assert_eq!(claims[..4], [const { Claim::Committed }; 4]);
    assert_eq!(claims[4..], [const { Claim::Ours }; 6]);
    let rec = b.recover(RecoverOptions::default()).unwrap();
    assert_eq!(rec.orphan_files_deleted.len(), 4, "{rec:?}");
    assert_eq!(rec.leases_expired.len(), 1);
    let mut w = writer(&b, &b.read_ledger().unwrap(), 100);
    for i in 4..12 {
        w.push(common::sample_result(i)).unwrap();
    }
    assert_eq!(w.finish().unwrap().tasks, 8);
    let end = b.finish_session().unwrap();
    // 12 tasks: 10 claimed twice (A, then B), 2 once.
    assert_eq!(end.claims_cleaned, 22, "{end:?}");
    assert_eq!(assert_each_task_once(&b).len(), 12);
    assert!(common::files_under(&dir.path().join("_claims")).is_empty());
}

#[test]
fn a_writer_whose_lease_ran_out_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    session(&a, "a", Duration::from_millis(1200));
    let ledger = a.prepare(PrepareOptions::default()).unwrap().ledger;
    a.claim(&ids(0..3)).unwrap();
    let mut w = writer(&a, &ledger, 100);
    for i in 0..3 {
        w.push(common::sample_result(i)).unwrap();
    }
    // The heartbeat stops, as when the process is stalled (SIGSTOP, swapping): past the
    // commit window, the writer refuses to commit, and stays refusing.
    a.stall_heartbeat();
    std::thread::sleep(Duration::from_millis(1000));
    let e = w.flush().unwrap_err();
    assert!(e.is_lease_lost() && !e.is_storage(), "{e}");
    assert!(a.claim(&ids(5..6)).unwrap_err().is_lease_lost());
    assert!(common::table_files(dir.path(), "tasks").is_empty());
    assert!(a.read_tasks().unwrap().is_empty());
}

#[test]
fn the_commit_refuses_a_task_whose_claim_was_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    let ledger = a.prepare(PrepareOptions::default()).unwrap().ledger;
    a.claim(&ids(0..3)).unwrap();
    // Someone created the next generation of task 1's claim (only a writer that judged
    // A dead would), and task 3 was never claimed.
    std::fs::write(
        dir.path().join("_claims/task-00001/g000001"),
        br#"{"lease":"other","at":"now"}"#,
    )
    .unwrap();
    let mut w = writer(&a, &ledger, 100);
    for i in 0..4 {
        w.push(common::sample_result(i)).unwrap();
    }
    let b = w.flush().unwrap().unwrap();
    assert_eq!(b.tasks, 2);
    assert_eq!(
        b.refused,
        ids(1..2).into_iter().chain(ids(3..4)).collect::<Vec<_>>()
    );
    let mut got: Vec<String> = a
        .read_tasks()
        .unwrap()
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    got.sort();
    assert_eq!(got, ["task-00000", "task-00002"]);
    a.finish_session().unwrap();
}

#[test]
fn a_clean_end_gives_unrun_claims_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    a.prepare(PrepareOptions::default()).unwrap();
    a.claim(&ids(0..5)).unwrap();
    let end = a.finish_session().unwrap();
    assert_eq!(end.released, 5);
    let b = open(dir.path());
    session(&b, "b", Duration::from_secs(60));
    assert_eq!(b.claim(&ids(0..5)).unwrap(), vec![Claim::Ours; 5]);
    b.finish_session().unwrap();
}

#[test]
fn a_dead_writers_uncommit_is_finished_only_after_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    session(&s, "first", Duration::from_secs(60));
    s.prepare(PrepareOptions::default()).unwrap();
    s.claim(&ids(0..10)).unwrap();
    let mut w = writer(&s, &Ledger::default(), 100);
    for i in 0..10 {
        w.push(common::sample_result(i)).unwrap();
    }
    w.finish().unwrap();
    s.finish_session().unwrap();

    let a = open(dir.path());
    session(&a, "a", Duration::from_millis(1200));
    a.inject_fault(Some(FaultPoint::AfterUncommitTasksFile));
    assert!(a.uncommit(&ids(0..2)).is_err());
    a.abandon_session();
    let b = open(dir.path());
    session(&b, "b", Duration::from_secs(60));
    let rec = b.recover(RecoverOptions::default()).unwrap();
    assert_eq!(rec.intents_replayed, 0, "A may still be at it");
    std::thread::sleep(Duration::from_millis(1400));
    let rec = b.recover(RecoverOptions::default()).unwrap();
    assert_eq!(rec.intents_replayed, 1);
    // The uncommit lock A died holding is taken over too.
    assert_eq!(b.uncommit(&ids(2..3)).unwrap(), 1);
    b.finish_session().unwrap();
    assert_eq!(assert_each_task_once(&b).len(), 7);
}
