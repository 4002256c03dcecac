//! The same protocol on S3, against a moto server on loopback that the tests start
//! themselves (`.venv` with `moto[server]`, see scripts/requirements.txt).

use synthsweep_testkit::store as common;

use std::time::{Duration, Instant};

use synthsweep_store::*;

fn s3_store(bucket: &str, prefix: &str) -> Store {
    let moto = common::shared_moto();
    moto.create_bucket(bucket);
    let root = OutputRoot::parse(&format!("s3://{bucket}/{prefix}")).unwrap();
    Store::open_with(&root, moto.options()).unwrap()
}

#[test]
fn s3_round_trip_and_layout() {
    let store = s3_store("roundtrip", "study/one");
    let prepared = store.prepare(PrepareOptions::default()).unwrap();
    assert!(prepared.ledger.is_empty() && prepared.recovery.is_clean());
    let mut o = WriterOptions::new("s3run");
    o.max_tasks = 8;
    let mut w = store.writer(o, &prepared.ledger).unwrap();
    let results: Vec<TaskResult> = (0..20).map(common::sample_result).collect();
    for r in &results {
        w.push(r.clone()).unwrap();
    }
    assert_eq!(w.finish().unwrap().batches, 3);
    store.write_run(&RunInfo::new("s3run", "spec")).unwrap();

    let d = store.read_dataset().unwrap();
    assert_eq!(d.tasks.len(), 20);
    assert_eq!(d.losses.len(), 100);
    let mut t0 = d
        .tasks
        .iter()
        .find(|t| t.task_id == "task-00000")
        .unwrap()
        .clone();
    t0.run_id.clear();
    t0.batch_id.clear();
    assert_eq!(t0, results[0].task);

    let keys = common::shared_moto().keys("roundtrip", "study/one/");
    assert_eq!(keys.len(), 5 * 3 + 1, "{keys:?}");
    for k in &keys {
        let rest = k.strip_prefix("study/one/").unwrap();
        let (folder, name) = rest.split_once('/').unwrap();
        if folder == "_runs" {
            assert_eq!(name, "s3run.json");
        } else {
            assert!(Table::from_name(folder).is_some(), "{k}");
            assert!(
                name.starts_with("part-s3run-w-") && name.ends_with(".parquet"),
                "{k}"
            );
        }
    }
    assert_eq!(store.summary().unwrap().done, 18);
}

#[test]
fn s3_kill_before_the_tasks_file_commits_nothing_and_recovery_cleans_up() {
    let store = s3_store("killed", "p");
    let mut w = common::big_writer(&store, &Ledger::default(), "k");
    for i in 0..6 {
        w.push(common::sample_result(i)).unwrap();
    }
    store.inject_fault(Some(FaultPoint::AfterDataFiles));
    assert!(matches!(w.flush(), Err(StoreError::Injected(_))));
    drop(w);
    assert_eq!(common::shared_moto().keys("killed", "p/").len(), 4);

    let store = s3_store("killed", "p");
    assert!(store.ledger().unwrap().is_empty());
    let prepared = store.prepare(PrepareOptions::default()).unwrap();
    assert_eq!(prepared.recovery.orphan_files_deleted.len(), 4);
    assert!(common::shared_moto().keys("killed", "p/").is_empty());

    let mut w = common::big_writer(&store, &prepared.ledger, "k2");
    for i in 0..6 {
        w.push(common::sample_result(i)).unwrap();
    }
    w.finish().unwrap();
    let prepared = store
        .prepare(PrepareOptions {
            retry_failed: true,
            ..Default::default()
        })
        .unwrap();
    assert!(prepared.recovery.is_clean());
    assert_eq!(prepared.ledger.len(), 6, "no failed task among 0..6");
    assert_eq!(store.read_tasks().unwrap().len(), 6);
}

#[test]
fn s3_retry_failed_rewrites_the_failed_batch() {
    let store = s3_store("retry", "");
    let mut w = common::big_writer(&store, &Ledger::default(), "a");
    for i in 0..10 {
        w.push(common::sample_result(i)).unwrap();
    }
    w.finish().unwrap();
    let prepared = store
        .prepare(PrepareOptions {
            retry_failed: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(prepared.uncommitted_failed, 1);
    let mut w = common::big_writer(&store, &prepared.ledger, "b");
    let mut r = common::sample_result(7);
    r.task.status = TaskStatus::Done;
    r.task.error = None;
    w.push(r).unwrap();
    w.finish().unwrap();
    let d = store.read_dataset().unwrap();
    assert_eq!(d.tasks.len(), 10);
    assert_eq!(
        d.losses
            .iter()
            .filter(|l| l.task_id == "task-00007")
            .count(),
        5
    );
    assert!(d.tasks.iter().all(|t| t.status == TaskStatus::Done));
    assert!(common::shared_moto().keys("retry", "_txn/").is_empty());
}

#[test]
fn s3_a_large_batch_goes_up_in_parts() {
    let store = s3_store("large", "x");
    // ~40 MB of incompressible pixels: above the single-PUT limit, so a multipart upload
    // (16 MiB parts; moto enforces S3's 5 MiB minimum) that appears only when completed.
    let mut seed = 12345u64;
    let pixels: Vec<f32> = (0..10_000_000)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let mut r = common::sample_result(0);
    r.images = vec![ImageRow {
        role: "saved".into(),
        channels: 1,
        height: 1000,
        width: 10_000,
        pixels: Some(pixels),
        ..Default::default()
    }];
    let mut w = common::big_writer(&store, &Ledger::default(), "big");
    w.push(r.clone()).unwrap();
    let report = w.flush().unwrap().unwrap();
    assert!(report.bytes > 32 << 20, "{}", report.bytes);
    let d = store.read_dataset().unwrap();
    assert_eq!(d.images.len(), 1);
    assert_eq!(d.images[0].pixels, r.images[0].pixels);
}

#[test]
fn s3_an_unreachable_endpoint_fails_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed again: nothing listens there
    let opts = StoreOptions::quick_retries()
        .with_s3("aws_endpoint", format!("http://127.0.0.1:{port}"))
        .with_s3("aws_access_key_id", "test")
        .with_s3("aws_secret_access_key", "test");
    let store = Store::open_with(&OutputRoot::parse("s3://nobucket/x").unwrap(), opts).unwrap();
    let t = Instant::now();
    assert!(store.ledger().is_err());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn s3_python_readers_see_the_schema_types() {
    let store = s3_store("pyread", "data/set");
    let mut o = WriterOptions::new("py");
    o.max_tasks = 9;
    let mut w = store.writer(o, &Ledger::default()).unwrap();
    for i in 0..20 {
        w.push(common::sample_result(i)).unwrap();
    }
    w.finish().unwrap();
    let out = common::check_tables(
        "s3://pyread/data/set",
        &["--readers", "polars,pyarrow", "--expect-tasks", "20"],
        &common::shared_moto().env(),
    );
    assert!(
        out.contains("polars: tasks 20") && out.contains("pyarrow: tasks 20"),
        "{out}"
    );
}

/// HTTPS, as real S3 is reached: moto serves TLS with a self-signed certificate (accepted
/// here with `aws_allow_invalid_certificates`), so the rustls stack the binary is built
/// with (ring as its crypto provider, see `root.rs`) does a real handshake, signs and
/// commits.
#[test]
fn s3_over_https_commits_and_reads_back() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let py = common::venv_python();
    // Under a shell that stops moto when our stdin pipe closes (the end of the test).
    let mut moto = Command::new("sh")
        .args([
            "-c",
            &format!(
                "\"$0\" -m moto.server -s -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
                 cat >/dev/null; kill $m"
            ),
            py.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let endpoint = format!("https://127.0.0.1:{port}");
    // The bucket, created with boto3 once the server answers (certificate not verified).
    let made = Command::new(&py)
        .args([
            "-c",
            "import sys, time, boto3, urllib3\n\
             urllib3.disable_warnings()\n\
             s3 = boto3.client('s3', endpoint_url=sys.argv[1], verify=False, region_name='us-east-1',\n\
                 aws_access_key_id='test', aws_secret_access_key='test')\n\
             for _ in range(600):\n\
             \x20   try:\n\
             \x20       s3.create_bucket(Bucket='tls'); break\n\
             \x20   except Exception as e:\n\
             \x20       err = e; time.sleep(0.1)\n\
             else:\n\
             \x20   sys.exit(f'moto with TLS did not answer: {err}')\n",
            &endpoint,
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let opts = StoreOptions::quick_retries()
        .with_s3("aws_endpoint", &endpoint)
        .with_s3("aws_allow_invalid_certificates", "true")
        .with_s3("aws_access_key_id", "test")
        .with_s3("aws_secret_access_key", "test")
        .with_s3("aws_region", "us-east-1");
    let store = Store::open_with(&OutputRoot::parse("s3://tls/p").unwrap(), opts).unwrap();
    let mut w = store
        .writer(WriterOptions::new("tls"), &Ledger::default())
        .unwrap();
    for i in 0..3 {
        w.push(common::sample_result(i)).unwrap();
    }
    assert_eq!(w.finish().unwrap().tasks, 3);
    assert_eq!(store.read_tasks().unwrap().len(), 3);
    let _ = moto.stdin.take().unwrap().write_all(b"");
    let _ = moto.wait();
}
