//! Many writers on one local root: create-if-absent races, claims, leases, takeovers after
//! a writer dies, recovery that spares the living, and the commit path's refusals.
//! Writers are real processes (this test binary run again) started together, or sessions
//! on separate `Store`s within one process where a test needs to control the timing.

use synthsweep_testkit::store as common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_each_task_once, ClaimingWriter};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use synthsweep_store::*;

fn open(dir: &Path) -> Store {
    Store::open(&OutputRoot::Local(dir.to_path_buf())).unwrap()
}

/// Opens a local folder or `s3://bucket/prefix` (on the moto server at `endpoint`).
fn open_root(root: &str, endpoint: Option<&str>) -> Store {
    let r = OutputRoot::parse(root).unwrap();
    match endpoint {
        Some(e) => Store::open_with(&r, moto_options(e)).unwrap(),
        None => Store::open(&r).unwrap(),
    }
}

fn moto_options(endpoint: &str) -> StoreOptions {
    StoreOptions::quick_retries()
        .with_s3("aws_endpoint", endpoint)
        .with_s3("aws_access_key_id", "test")
        .with_s3("aws_secret_access_key", "test")
        .with_s3("aws_region", "us-east-1")
}

/// A bare S3 client of the moto server (for the create-if-absent race).
fn s3_client(endpoint: &str, bucket: &str) -> object_store::aws::AmazonS3 {
    // Built without a Store, so without the TLS provider Store::open installs (rustls has
    // no default one in this build): a process that opened no Store would panic here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(bucket)
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_region("us-east-1")
        .with_allow_http(true)
        .build()
        .unwrap()
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
        let endpoint = std::env::var("MANY_WRITERS_ENDPOINT").ok();
        let n = ClaimingWriter::decode(cfg).run(&open_root(root, endpoint.as_deref()));
        println!("\nCOMMITTED {n}");
    }
    if let Ok(v) = std::env::var("MANY_WRITERS_S3_RACE") {
        let p: Vec<&str> = v.split(';').collect();
        let s3 = s3_client(p[0], p[1]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        wait_until(p[4].parse().unwrap());
        let won = rt.block_on(race_once(&s3, p[2], p[3]));
        println!("{}", if won { "WON" } else { "LOST" });
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

/// The racers that won: threads `t{i}` whose race returned true, then child processes `p{i}`
/// that printed WON (each child must exit successfully).
fn winners(
    threads: Vec<std::thread::JoinHandle<bool>>,
    kids: Vec<std::process::Child>,
) -> Vec<String> {
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
    winners
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
        let winners = winners(threads, kids);
        assert_eq!(winners.len(), 1, "one winner among 16 racers: {winners:?}");
        let content = std::fs::read_to_string(dir.path().join(&key)).unwrap();
        assert_eq!(content, winners[0], "the key holds the winner's content");
    }
}

/// Runs `n` claiming writer processes started together on one root (plus `extra` started
/// `extra_after` later), while this process reads the tasks table over and over: each
/// read must list every task at most once. Returns each writer's output.
fn writers_together(
    root: &str,
    endpoint: Option<&str>,
    cfgs: &[ClaimingWriter],
    late: Option<(Duration, ClaimingWriter)>,
    kills: &[(usize, Duration)],
) -> Vec<std::process::Output> {
    let spawn = |c: &ClaimingWriter| {
        let mut cmd = child(("MANY_WRITERS_CHILD", format!("{root};{}", c.encode())));
        if let Some(e) = endpoint {
            cmd.env("MANY_WRITERS_ENDPOINT", e);
        }
        cmd.spawn().unwrap()
    };
    let mut kids: Vec<_> = cfgs.iter().map(spawn).collect();
    let started = Instant::now();
    let mut late = late;
    let mut kills: Vec<(usize, Duration)> = kills.to_vec();
    let reader = open_root(root, endpoint);
    let mut reads = 0;
    loop {
        if let Some((after, c)) = &late {
            if started.elapsed() >= *after {
                kids.push(spawn(c));
                late = None;
            }
        }
        kills.retain(|(k, at)| {
            if started.elapsed() < *at {
                return true;
            }
            let _ = kids[*k].kill(); // SIGKILL
            false
        });
        if let Ok(rows) = reader.read_tasks() {
            let mut ids: Vec<&str> = rows.iter().map(|r| r.task_id.as_str()).collect();
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), n, "a reader saw a task twice");
            reads += 1;
        }
        if late.is_none()
            && kills.is_empty()
            && kids.iter_mut().all(|k| k.try_wait().unwrap().is_some())
        {
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
        end_together: None,
    }
}

/// The writers' committed counts, from their output; `None` for a killed writer.
fn counts(outs: &[std::process::Output]) -> Vec<Option<usize>> {
    outs.iter()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout);
            o.status.code()?; // None: killed
            assert!(
                o.status.success(),
                "a writer failed: {text}{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let n = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("COMMITTED "))
                .unwrap_or_else(|| panic!("no count in the writer's output: {text}"));
            Some(n.parse().unwrap())
        })
        .collect()
}

/// Writers of `tasks` tasks each, tagged `<prefix><i>`, with this lease. Every other one
/// claims 16 tasks at a time (with claim sets, which then cross each other's and the
/// per-task claims of the others), the rest 4 (per-task claims).
fn writers(prefix: &str, n: usize, tasks: usize, lease: Duration) -> Vec<ClaimingWriter> {
    (0..n)
        .map(|i| {
            let group = if i % 2 == 0 { 16 } else { 4 };
            let mut c = cfg(&format!("{prefix}{i}"), tasks, group, 3);
            c.lease = lease;
            c
        })
        .collect()
}

/// 8 shards' worth of writers started together plus a duplicate run started in the middle,
/// while a reader looks: every task once, nothing left over.
/// The writers end their sessions at one moment (a barrier in a local folder): on S3 they
/// would otherwise end a poll period apart, and the last would find the others gone (not
/// ending), which cleans up without the ending markers this test is there to prove.
fn together(root: &str, endpoint: Option<&str>, lease: Duration, tasks: usize) {
    let barrier = tempfile::tempdir().unwrap();
    let end = Some((barrier.path().join("ended"), 9));
    let mut late = cfg("late", tasks, 8, 1);
    late.lease = lease;
    late.end_together = end.clone();
    let mut shards = writers("s", 8, tasks, lease);
    for w in &mut shards {
        w.end_together = end.clone();
    }
    let outs = writers_together(
        root,
        endpoint,
        &shards,
        Some((Duration::from_millis(300), late)),
        &[],
    );
    let counts: Vec<usize> = counts(&outs).into_iter().map(Option::unwrap).collect();
    let store = open_root(root, endpoint);
    assert_eq!(assert_each_task_once(&store).len(), tasks);
    let total: usize = counts.iter().sum();
    assert_eq!(
        total, tasks,
        "the writers committed {tasks} tasks between them: {counts:?}"
    );
    let busy = counts.iter().filter(|n| **n > 0).count();
    assert!(busy >= 2, "only {busy} writer(s) did any work ({counts:?})");
    // The writers ended together, each seeing the others alive: the last to end (every
    // other one ending) deleted the claims of the committed tasks, before any recovery.
    let left: Vec<_> = ["_claims", "_claimsets"]
        .iter()
        .flat_map(|kind| match endpoint {
            None => common::files_under(&Path::new(root).join(kind)),
            Some(_) => {
                let (bucket, prefix) = root["s3://".len()..].split_once('/').unwrap();
                common::shared_moto().keys(bucket, &format!("{prefix}/{kind}/"))
            }
        })
        .collect();
    assert!(
        left.is_empty(),
        "claims left once the writers ended: {left:?}"
    );
    let end = store.recover(RecoverOptions::default()).unwrap();
    assert!(end.is_clean(), "{end:?}");
    let act = store.activity().unwrap();
    assert!(act.writers.is_empty() && act.claimed.is_empty(), "{act}");
}

/// The same with three writers killed (-9) at seeded random moments: the others take their
/// tasks over once their leases expire; a resume afterwards finds nothing left to do.
fn together_with_kills(
    root: &str,
    endpoint: Option<&str>,
    lease: Duration,
    tasks: usize,
    seed: u64,
) {
    let mut cfgs = writers("k", 8, tasks, lease);
    for c in &mut cfgs {
        c.task_ms = 60;
    }
    // splitmix64: three distinct writers, each killed between 0.15 and 0.9 s.
    let mut x = seed;
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut kills: Vec<(usize, Duration)> = Vec::new();
    while kills.len() < 3 {
        let k = (next() % 8) as usize;
        if kills.iter().all(|(j, _)| *j != k) {
            kills.push((k, Duration::from_millis(150 + next() % 750)));
        }
    }
    let outs = writers_together(root, endpoint, &cfgs, None, &kills);
    let counts = counts(&outs);
    let killed = counts.iter().filter(|c| c.is_none()).count();
    // A writer may have finished before its moment came (then it was not killed).
    assert!(killed >= 1, "{counts:?}");
    // The survivors waited for the dead writers' tasks and took them over.
    let store = open_root(root, endpoint);
    assert_eq!(
        assert_each_task_once(&store).len(),
        tasks,
        "the survivors finish the killed writers' tasks"
    );
    // A resume after the leases expired: nothing to run, the dead writers' leftovers go.
    std::thread::sleep(lease + Duration::from_secs(2));
    let resumed = cfg("resume", tasks, 8, 4).run(&open_root(root, endpoint));
    assert_eq!(resumed, 0);
    let rec = store.recover(RecoverOptions::default()).unwrap();
    assert!(rec.is_clean(), "{rec:?}");
    assert_eq!(assert_each_task_once(&store).len(), tasks);
    let act = store.activity().unwrap();
    assert!(
        act.writers.is_empty() && act.stale.is_empty() && act.claimed.is_empty(),
        "{act}"
    );
}

fn moto_endpoint() -> String {
    let o = common::shared_moto().options();
    o.s3_config
        .iter()
        .find(|(k, _)| k == "aws_endpoint")
        .map(|(_, v)| v.clone())
        .unwrap()
}

#[test]
fn eight_shards_and_a_duplicate_run_commit_every_task_once() {
    let dir = tempfile::tempdir().unwrap();
    together(
        &dir.path().display().to_string(),
        None,
        Duration::from_secs(5),
        96,
    );
    assert!(common::files_under(&dir.path().join("_staging")).is_empty());
    assert!(common::files_under(&dir.path().join("_leases")).is_empty());
    for t in ["losses", "eigen", "images", "scores"] {
        assert_eq!(
            common::table_files(dir.path(), t).len(),
            common::table_files(dir.path(), "tasks").len(),
            "no orphan files in {t}"
        );
    }
}

#[test]
fn eight_shards_and_a_duplicate_run_on_s3() {
    let moto = common::shared_moto();
    moto.create_bucket("together");
    together(
        "s3://together/root",
        Some(&moto_endpoint()),
        Duration::from_secs(8),
        40,
    );
    let keys = moto.keys("together", "root/");
    assert!(
        keys.iter().all(|k| !k.starts_with("root/_leases/")
            && !k.starts_with("root/_claims/")
            && !k.starts_with("root/_claimsets/")),
        "{keys:?}"
    );
}

#[test]
fn three_writers_killed_then_a_resume_commit_every_task_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    together_with_kills(&root, None, Duration::from_secs(3), 96, 8);
    assert!(common::files_under(&dir.path().join("_staging")).is_empty());
    assert!(common::files_under(&dir.path().join("_leases")).is_empty());
    assert!(common::files_under(&dir.path().join("_claims")).is_empty());
    assert!(common::files_under(&dir.path().join("_claimsets")).is_empty());
    // The survivors marked the killed writers dead before taking their claims over; the
    // resume's recovery removed the marks with the expired leases.
    assert!(common::files_under(&dir.path().join("_dead")).is_empty());
}

#[test]
fn three_writers_killed_then_a_resume_on_s3() {
    let moto = common::shared_moto();
    moto.create_bucket("killed");
    together_with_kills(
        "s3://killed/root",
        Some(&moto_endpoint()),
        Duration::from_secs(5),
        40,
        9,
    );
    let keys = moto.keys("killed", "root/");
    assert!(
        keys.iter().all(|k| !k.starts_with("root/_leases/")
            && !k.starts_with("root/_claims/")
            && !k.starts_with("root/_claimsets/")),
        "{keys:?}"
    );
}

#[test]
fn create_if_absent_on_s3_has_one_winner_among_processes_and_threads() {
    let moto = common::shared_moto();
    moto.create_bucket("race");
    let endpoint = moto_endpoint();
    for key in 0..3 {
        let key = format!("_claims/k{key}/g000000");
        let go = in_ms(1500);
        let kids: Vec<_> = (0..6)
            .map(|i| {
                child((
                    "MANY_WRITERS_S3_RACE",
                    format!("{endpoint};race;{key};p{i};{go}"),
                ))
                .spawn()
                .unwrap()
            })
            .collect();
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let (endpoint, key) = (endpoint.clone(), key.clone());
                std::thread::spawn(move || {
                    let s3 = s3_client(&endpoint, "race");
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    wait_until(go);
                    rt.block_on(race_once(&s3, &key, &format!("t{i}")))
                })
            })
            .collect();
        let winners = winners(threads, kids);
        assert_eq!(winners.len(), 1, "one winner among 12 racers: {winners:?}");
        let s3 = s3_client(&endpoint, "race");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body = rt.block_on(async {
            let path = object_store::path::Path::from(key.as_str());
            s3.get(&path).await.unwrap().bytes().await.unwrap()
        });
        assert_eq!(
            body.as_ref(),
            winners[0].as_bytes(),
            "the key holds the winner's content"
        );
    }
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
    // B marked A dead before taking its claims over; status shows the mark.
    let act = b.activity().unwrap();
    assert_eq!(act.marked_dead.len(), 1, "{act}");
    assert!(act.to_string().contains("writers marked dead: 1"), "{act}");
    let rec = b.recover(RecoverOptions::default()).unwrap();
    assert_eq!(rec.orphan_files_deleted.len(), 4, "{rec:?}");
    assert_eq!(rec.leases_expired.len(), 1);
    assert_eq!(
        rec.marks_deleted, 1,
        "A's mark goes with its lease: {rec:?}"
    );
    assert!(b.activity().unwrap().marked_dead.is_empty());
    // The claims of the 4 tasks A committed go too (B's g1 over A's set: B asked again
    // per task for the tasks it had found held): B, the only live writer, knows those tasks
    // committed. A's set stays while it holds uncommitted tasks.
    assert_eq!(rec.claims_deleted, 4, "{rec:?}");
    let mut w = writer(&b, &b.read_ledger().unwrap(), 100);
    for i in 4..12 {
        w.push(common::sample_result(i)).unwrap();
    }
    assert_eq!(w.finish().unwrap().tasks, 8);
    let end = b.finish_session().unwrap();
    // The 8 other tasks: 6 held by A's set and taken over by B one by one (6 objects),
    // 2 held by B's first set; those and both sets deleted by the recovery at B's end (B
    // met a dead writer) or, failing that, by B's own clean-up.
    let at_end = end.recovered.as_ref().map_or(0, |r| r.claims_deleted);
    assert_eq!(at_end + end.claims_cleaned, 6 + 2, "{end:?}");
    assert_eq!(assert_each_task_once(&b).len(), 12);
    assert!(common::files_under(&dir.path().join("_claims")).is_empty());
    assert!(common::files_under(&dir.path().join("_claimsets")).is_empty());
}

/// A writer commits a batch and ends its session while another process's recovery is
/// between listing the files and judging the leases (six sweeps side by side on one root
/// did this once: a report page without its images). The batch is committed, not an orphan
/// of a dead writer: every row of its tasks stays. With the tasks files listed before the
/// leases, its losses, images and scores files were deleted.
#[test]
fn a_batch_committed_while_a_recovery_lists_the_root_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    let ledger = a.prepare(PrepareOptions::default()).unwrap().ledger;
    a.claim(&ids(0..3)).unwrap();
    let mut w = writer(&a, &ledger, 100);
    for i in 0..3 {
        w.push(common::sample_result(i)).unwrap();
    }
    // A's data files are in place, its tasks file (the commit point) not yet.
    a.inject_fault(Some(FaultPoint::AfterDataFiles));
    assert!(w.flush().is_err());
    let r = open(dir.path());
    // After R has listed the root, A commits (the same batch, retried) and ends: its lease
    // is gone when R judges the leases.
    r.before_recovery_liveness(Some(Box::new(move || {
        std::thread::spawn(move || {
            assert_eq!(w.finish().unwrap().tasks, 3);
            a.finish_session().unwrap();
        })
        .join()
        .unwrap();
    })));
    let rec = r.recover(RecoverOptions::default()).unwrap();
    assert!(common::files_under(&dir.path().join("_leases")).is_empty());
    assert!(rec.orphan_files_deleted.is_empty(), "{rec:?}");
    assert_eq!(assert_each_task_once(&r).len(), 3);
    let d = r.read_dataset().unwrap();
    for id in ids(0..3) {
        assert!(
            d.losses.iter().any(|l| l.task_id == id),
            "{id}: no losses row"
        );
        assert!(
            d.images.iter().any(|l| l.task_id == id),
            "{id}: no images row"
        );
    }
}

#[test]
fn a_recovery_that_deletes_only_claims_or_marks_is_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    // A commits 3 claimed tasks, then quits at once: its lease goes, its claims stay.
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    let ledger = a.prepare(PrepareOptions::default()).unwrap().ledger;
    a.claim(&ids(0..3)).unwrap();
    let mut w = writer(&a, &ledger, 100);
    for i in 0..3 {
        w.push(common::sample_result(i)).unwrap();
    }
    w.finish().unwrap();
    assert!(a.quit_session(Duration::from_secs(2)));
    assert_eq!(common::files_under(&dir.path().join("_claims")).len(), 3);
    // A dead-writer mark of a writer that is gone.
    std::fs::create_dir_all(dir.path().join("_dead")).unwrap();
    std::fs::write(dir.path().join("_dead/gone-p0-00000000"), b"taken over").unwrap();
    let r = open(dir.path());
    let rec = r.recover(RecoverOptions::default()).unwrap();
    assert_eq!((rec.claims_deleted, rec.marks_deleted), (3, 1), "{rec:?}");
    assert!(!rec.is_clean(), "{rec:?}");
    assert!(common::files_under(&dir.path().join("_claims")).is_empty());
    assert!(common::files_under(&dir.path().join("_claimsets")).is_empty());
    let rec = r.recover(RecoverOptions::default()).unwrap();
    assert!(rec.is_clean(), "{rec:?}");
}

#[test]
fn claims_made_ahead_land_before_the_session_ends_and_are_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    a.prepare(PrepareOptions::default()).unwrap();
    let first = a.claim_ahead(ids(0..4)).unwrap();
    assert_eq!(first.wait().unwrap(), vec![Claim::Ours; 4]);
    // The next group, still in flight (never waited for) when the session ends: the end
    // waits for it, so its claims are recorded and given back, none left behind.
    let _ahead = a.claim_ahead(ids(4..40)).unwrap();
    let end = a.finish_session().unwrap();
    assert_eq!(end.released, 40, "{end:?}");
    assert!(common::files_under(&dir.path().join("_claims")).is_empty());
    assert!(common::files_under(&dir.path().join("_claimsets")).is_empty());
    let b = open(dir.path());
    session(&b, "b", Duration::from_secs(60));
    assert_eq!(b.claim(&ids(0..40)).unwrap(), vec![Claim::Ours; 40]);
    b.finish_session().unwrap();
}

#[test]
fn a_writer_that_quits_at_once_is_cleaned_up_and_taken_over_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    // A (a 60 s lease) commits 2 tasks, writes the data files of 2 more, then quits at once
    // (a second Ctrl-C): commits in flight land, later ones are refused, the lease goes.
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    let ledger = a.prepare(PrepareOptions::default()).unwrap().ledger;
    assert_eq!(a.claim(&ids(0..6)).unwrap(), vec![Claim::Ours; 6]);
    let mut w = writer(&a, &ledger, 100);
    for i in 0..2 {
        w.push(common::sample_result(i)).unwrap();
    }
    w.flush().unwrap();
    for i in 2..4 {
        w.push(common::sample_result(i)).unwrap();
    }
    a.inject_fault(Some(FaultPoint::AfterDataFiles));
    assert!(w.flush().is_err());
    a.inject_fault(None);
    assert!(a.quit_session(Duration::from_secs(2)));
    assert!(w.flush().unwrap_err().is_lease_lost());
    assert!(a.claim(&ids(6..7)).unwrap_err().is_lease_lost());
    assert!(common::files_under(&dir.path().join("_leases")).is_empty());

    // B starts right away: A's orphans go at once, A's claims are B's, A's commits stay.
    let b = open(dir.path());
    session(&b, "b", Duration::from_secs(60));
    let r = b.prepare(PrepareOptions::default()).unwrap();
    assert_eq!(r.recovery.orphan_files_deleted.len(), 4, "{:?}", r.recovery);
    let claims = b.claim(&ids(0..6)).unwrap();
    assert_eq!(claims[..2], [const { Claim::Committed }; 2]);
    assert_eq!(claims[2..], [const { Claim::Ours }; 4]);
    let mut w = writer(&b, &b.read_ledger().unwrap(), 100);
    for i in 2..6 {
        w.push(common::sample_result(i)).unwrap();
    }
    assert_eq!(w.finish().unwrap().tasks, 4);
    b.finish_session().unwrap();
    assert_eq!(assert_each_task_once(&b).len(), 6);
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

/// A writer that another writer judged dead and took tasks over from (only a writer whose
/// liveness look found its lease expired would: it marked it dead, `_dead/<lease>`, then
/// created the next generation of task 3's claim; task 5 was never claimed). `put` writes
/// an object under the root, as that other writer would.
fn commit_after_a_takeover(root: &str, endpoint: Option<&str>, put: impl Fn(&str, &[u8])) {
    let a = open_root(root, endpoint);
    let info = session(&a, "a", Duration::from_secs(60));
    let ledger = a.prepare(PrepareOptions::default()).unwrap().ledger;
    a.claim(&ids(0..4)).unwrap();
    let mut w = writer(&a, &ledger, 100);
    for i in 0..2 {
        w.push(common::sample_result(i)).unwrap();
    }
    // Without a dead-writer mark of A, its claims have no next generation: no per-task look.
    assert_eq!(w.flush().unwrap().unwrap().tasks, 2);
    put(&format!("_dead/{}", info.lease_id), b"taken over");
    put(
        "_claims/task-00003/g000001",
        br#"{"lease":"other","at":"now"}"#,
    );
    for i in [2, 3, 5] {
        w.push(common::sample_result(i)).unwrap();
    }
    let got = |want: &[&str]| {
        let mut got: Vec<String> = a
            .read_tasks()
            .unwrap()
            .into_iter()
            .map(|t| t.task_id)
            .collect();
        got.sort();
        assert_eq!(got, want);
    };
    if endpoint.is_none() {
        // A local root fences the commit itself: marked dead, the writer commits nothing
        // (a process stopped past its lease could otherwise land its commit late).
        let e = w.flush().unwrap_err();
        assert!(e.is_lease_lost() && !e.is_storage(), "{e}");
        got(&["task-00000", "task-00001"]);
    } else {
        // On S3 the commit drops the tasks whose claim has a next generation (or none).
        let b = w.flush().unwrap().unwrap();
        assert_eq!(b.tasks, 1);
        assert_eq!(
            b.refused,
            ids(3..4).into_iter().chain(ids(5..6)).collect::<Vec<_>>()
        );
        got(&["task-00000", "task-00001", "task-00002"]);
    }
    a.finish_session().unwrap();
}

#[test]
fn the_commit_refuses_a_task_whose_claim_was_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    commit_after_a_takeover(&dir.path().display().to_string(), None, |key, data| {
        let p = base.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    });
}

#[test]
fn the_commit_refuses_a_task_whose_claim_was_taken_over_on_s3() {
    let moto = common::shared_moto();
    moto.create_bucket("takenover");
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint, "takenover");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    commit_after_a_takeover("s3://takenover/root", Some(&endpoint), |key, data| {
        rt.block_on(s3.put(
            &object_store::path::Path::from(format!("root/{key}")),
            PutPayload::from(data.to_vec()),
        ))
        .unwrap();
    });
}

#[test]
fn a_clean_end_gives_unrun_claims_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    a.prepare(PrepareOptions::default()).unwrap();
    a.claim(&ids(0..5)).unwrap();
    // Another writer's put in progress in one task's folder (object_store's staging file):
    // that folder stays, the others go with their claims.
    let busy = dir
        .path()
        .join("_claims")
        .join(&ids(2..3)[0])
        .join("g000001#1");
    std::fs::write(&busy, b"in progress").unwrap();
    let end = a.finish_session().unwrap();
    assert_eq!(end.released, 5);
    let left: Vec<_> = std::fs::read_dir(dir.path().join("_claims"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from(&ids(2..3)[0])]);
    std::fs::remove_file(&busy).unwrap();
    let b = open(dir.path());
    session(&b, "b", Duration::from_secs(60));
    assert_eq!(b.claim(&ids(0..5)).unwrap(), vec![Claim::Ours; 5]);
    b.finish_session().unwrap();
    // No empty folder left behind: neither a task's nor `_claims/` itself.
    assert!(!dir.path().join("_claims").exists());
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

/// A writer killed in the middle of a put on a local root leaves object_store's staging
/// file (`g1#3`) in `_claims/<task>/`; no listing shows it, so recovery removes it by its
/// name once it is older than a lease (a put lasts milliseconds), and leaves a fresh one.
/// (Seen once in CI: three killed writers left such a file after the resume.)
#[test]
fn recovery_removes_puts_a_killed_writer_left_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_root(&dir.path().display().to_string(), None);
    let claim = dir.path().join("_claims").join("t1");
    std::fs::create_dir_all(&claim).unwrap();
    let (old, fresh) = (claim.join("g1#3"), claim.join("g2#4"));
    for p in [&old, &fresh] {
        std::fs::write(p, b"").unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    let rec = store.recover(RecoverOptions::default()).unwrap();
    assert_eq!(rec.staging_files_deleted, 1, "{rec:?}");
    assert!(!rec.is_clean());
    assert!(!old.exists() && fresh.exists());
}

#[test]
fn a_writer_alone_claims_a_group_with_one_set_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    let ledger = a.prepare(PrepareOptions::default()).unwrap().ledger;
    assert_eq!(a.claim(&ids(0..40)).unwrap(), vec![Claim::Ours; 40]);
    // One object for the 40 claims, confirmed, nothing excluded; no per-task claim.
    let sets = common::files_under(&dir.path().join("_claimsets"));
    assert_eq!(sets.len(), 1, "{sets:?}");
    let set: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("_claimsets").join(&sets[0])).unwrap(),
    )
    .unwrap();
    assert_eq!(set["confirmed"], true, "{set}");
    assert_eq!(set["tasks"].as_array().unwrap().len(), 40, "{set}");
    assert!(set.get("excluded").is_none(), "{set}");
    assert!(!dir.path().join("_claims").exists());
    // Another writer sees them held (without a claim of its own left behind).
    let b = open(dir.path());
    session(&b, "b", Duration::from_secs(60));
    let held = b.claim(&ids(30..50)).unwrap();
    assert!(
        held[..10].iter().all(|c| matches!(c, Claim::Held { .. })),
        "{held:?}"
    );
    assert_eq!(held[10..], [const { Claim::Ours }; 10]);
    b.finish_session().unwrap();
    // A commits 25 and ends: the 15 others are given back (its set rewritten without
    // them), then, alone, it deletes the claims of the committed ones.
    let mut w = writer(&a, &ledger, 100);
    for i in 0..25 {
        w.push(common::sample_result(i)).unwrap();
    }
    assert_eq!(w.finish().unwrap().tasks, 25);
    let end = a.finish_session().unwrap();
    assert_eq!(end.released, 15, "{end:?}");
    assert!(common::files_under(&dir.path().join("_claimsets")).is_empty());
    assert!(common::files_under(&dir.path().join("_claims")).is_empty());
    let c = open(dir.path());
    session(&c, "c", Duration::from_secs(60));
    c.prepare(PrepareOptions::default()).unwrap();
    assert_eq!(c.claim(&ids(25..40)).unwrap(), vec![Claim::Ours; 15]);
    c.finish_session().unwrap();
}

/// Six writers claim the same 64 tasks at one moment, three with claim sets (one group of
/// 64), three one task claim at a time (groups of 2), then ask again for what they found
/// held, as the engine does: no task is ever any two writers' at once, and every task ends
/// up some writer's within seconds (crossing sets leave their tasks to the per-task claims,
/// where one writer wins; nobody waits for a writer that does not hold the task).
fn crossing_claims(root: &str, endpoint: Option<&str>) {
    const TASKS: usize = 64;
    let owners = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        usize,
    >::new()));
    let start = std::sync::Arc::new(std::sync::Barrier::new(6));
    let done = std::sync::Arc::new(std::sync::Barrier::new(6));
    let threads: Vec<_> = (0..6)
        .map(|w| {
            let (owners, start, done) = (owners.clone(), start.clone(), done.clone());
            let (root, endpoint) = (root.to_string(), endpoint.map(str::to_string));
            std::thread::spawn(move || {
                let store = open_root(&root, endpoint.as_deref());
                session(&store, &format!("w{w}"), Duration::from_secs(30));
                let group = if w < 3 { TASKS } else { 2 };
                let mut todo = ids(0..TASKS);
                let deadline = Instant::now() + Duration::from_secs(15);
                start.wait();
                loop {
                    let mut held = Vec::new();
                    for g in todo.chunks(group) {
                        for (t, c) in g.iter().zip(store.claim(g).unwrap()) {
                            match c {
                                Claim::Ours => {
                                    let mut o = owners.lock().unwrap();
                                    let prev = o.insert(t.clone(), w);
                                    assert!(
                                        prev.is_none_or(|p| p == w),
                                        "{t} is writer {w}'s and writer {prev:?}'s"
                                    );
                                }
                                Claim::Held { .. } => held.push(t.clone()),
                                Claim::Committed => panic!("nothing is committed"),
                            }
                        }
                    }
                    if owners.lock().unwrap().len() == TASKS || held.is_empty() {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "writer {w}: {} task(s) still held by others, {} owned in all",
                        held.len(),
                        owners.lock().unwrap().len()
                    );
                    todo = held;
                    std::thread::sleep(Duration::from_millis(50));
                }
                // Everyone stays alive (holding its tasks) until every task is someone's.
                while owners.lock().unwrap().len() < TASKS && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                done.wait();
                store.finish_session().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let owners = owners.lock().unwrap();
    assert_eq!(owners.len(), TASKS, "tasks nobody got: {owners:?}");
    let mut per: Vec<usize> = vec![0; 6];
    for w in owners.values() {
        per[*w] += 1;
    }
    println!("tasks per writer: {per:?}");
}

#[test]
fn crossing_claim_sets_and_task_claims_give_each_task_to_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    crossing_claims(&dir.path().display().to_string(), None);
    // Every claim given back at the ends (nothing was committed).
    assert!(common::files_under(&dir.path().join("_claimsets")).is_empty());
    assert!(common::files_under(&dir.path().join("_claims")).is_empty());
}

#[test]
fn crossing_claim_sets_and_task_claims_on_s3() {
    let moto = common::shared_moto();
    moto.create_bucket("crossing");
    crossing_claims("s3://crossing/root", Some(&moto_endpoint()));
    let keys = moto.keys("crossing", "root/");
    assert!(
        keys.iter()
            .all(|k| !k.starts_with("root/_claims/") && !k.starts_with("root/_claimsets/")),
        "{keys:?}"
    );
}

#[test]
fn recovery_removes_the_empty_staging_folders_and_clock_probes_of_gone_writers() {
    let dir = tempfile::tempdir().unwrap();
    // A writer killed before its first staging file (or whose staging a taker deleted).
    let gone = dir.path().join("_staging").join("gone-p0-00000000");
    std::fs::create_dir_all(&gone).unwrap();
    // And the clock probe a writer stopped past its lease wrote after its lease was gone.
    let probe = dir.path().join("_clock").join("gone-p0-00000000");
    std::fs::create_dir_all(probe.parent().unwrap()).unwrap();
    std::fs::write(&probe, b"").unwrap();
    let a = open(dir.path());
    session(&a, "a", Duration::from_secs(60));
    let rec = a.recover(RecoverOptions::default()).unwrap();
    assert_eq!(rec.staging_files_deleted, 1, "{rec:?}");
    assert_eq!(rec.marks_deleted, 1, "{rec:?}");
    assert!(!gone.exists());
    assert!(!probe.exists());
    a.finish_session().unwrap();
}

/// A dead writer's set confirmation that landed late (it was stopped past its lease between
/// its deadline check and that write) names a task a live writer claimed per task meanwhile:
/// the live writer keeps it; nobody takes it over while that writer lives.
#[test]
fn a_late_set_of_a_dead_writer_does_not_take_a_live_task_claim_away() {
    let dir = tempfile::tempdir().unwrap();
    let w = open(dir.path());
    let info = session(&w, "w", Duration::from_secs(60));
    assert_eq!(w.claim(&ids(0..1)).unwrap(), vec![Claim::Ours]);
    assert!(dir.path().join("_claims/task-00000/g000000").exists());
    // The late confirmation of writer "x", whose lease is gone.
    std::fs::create_dir_all(dir.path().join("_claimsets")).unwrap();
    std::fs::write(
        dir.path().join("_claimsets/gone-x-0000000a-s000000.json"),
        br#"{"lease":"gone-x-0000000a","at":"now","confirmed":true,"tasks":["task-00000"]}"#,
    )
    .unwrap();
    // A set round of 8 tasks (its look sees both claims of task 0).
    let z = open(dir.path());
    session(&z, "z", Duration::from_secs(60));
    let got = z.claim(&ids(0..8)).unwrap();
    assert_eq!(
        got[0],
        Claim::Held {
            by: info.lease_id.clone()
        },
        "{got:?}"
    );
    assert_eq!(got[1..], [const { Claim::Ours }; 7]);
    assert!(!dir.path().join("_claims/task-00000/g000001").exists());
    z.finish_session().unwrap();
    w.finish_session().unwrap();
}
