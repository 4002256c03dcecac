//! Many `synthsweep run` processes on one output root at once (issue 8): shards started
//! together plus a duplicate plain run, and the same with writers killed (-9) and a resume
//! after their leases expire; locally and on the moto S3 server. Every task ends up in
//! `tasks` exactly once and the dataset equals a single uninterrupted run's.

use synthsweep_testkit::cli as common;

use common::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// 2 images x 12 seeds: 24 small metamer tasks.
const SPEC: &str = r#"
name = "many-writers"
synth = "metamer"
[params]
model = { name = "gaussian", kernel_size = 5 }
max_iter = 3
[grid]
image = "images"
seed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
"#;
const TASKS: usize = 24;
/// A short lease, so killed writers' tasks are taken over within seconds.
const LEASE_SECS: &str = "3";

fn spawn(spec: &str, root: &str, extra: &[&str], env: &[(&'static str, String)]) -> Child {
    let mut c = bin();
    c.args([
        "run",
        spec,
        "--out",
        root,
        "--workers",
        "1",
        "--batch-tasks",
        "1",
    ])
    .args(extra)
    .env("SYNTHSWEEP_LEASE_SECS", LEASE_SECS)
    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// 4 shards and a duplicate plain run started together; kills `kill` of the shards after
/// `kill_after`. Returns the exit codes (None: killed) with the logs.
fn together(
    spec: &str,
    root: &str,
    env: &[(&'static str, String)],
    kill: &[usize],
    kill_after: Duration,
) -> Vec<(Option<i32>, String)> {
    let mut kids: Vec<Child> = (0..4)
        .map(|i| spawn(spec, root, &["--shard", &format!("{i}/4")], env))
        .collect();
    kids.push(spawn(spec, root, &[], env));
    let start = Instant::now();
    let mut killed = false;
    while !killed && !kill.is_empty() {
        if start.elapsed() >= kill_after {
            for &k in kill {
                let _ = kids[k].kill();
            }
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    kids.into_iter()
        .map(|k| {
            let o = k.wait_with_output().unwrap();
            (o.status.code(), text(&o))
        })
        .collect()
}

fn each_task_once(d: &synthsweep_store::Dataset) {
    assert_consistent(d);
    assert_eq!(d.tasks.len(), TASKS, "every task once");
}

fn scenario(
    root_of: impl Fn(&str) -> String,
    env: &[(&'static str, String)],
    read: fn(&str) -> synthsweep_store::Dataset,
) {
    let sb = Sandbox::new().with_images(16);
    let spec = sb.write("spec.toml", SPEC);
    let spec = spec.to_str().unwrap();
    let reference = root_of("reference");
    let mut one = bin();
    one.args(["run", spec, "--out", &reference, "--workers", "1"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let o = one.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let reference = canonical(&read(&reference));
    assert_eq!(reference.tasks.len(), TASKS);

    // All together: all exit 0, every task once, the same dataset.
    let root = root_of("together");
    for (code, log) in together(spec, &root, env, &[], Duration::ZERO) {
        assert_eq!(code, Some(0), "{log}");
    }
    let d = read(&root);
    each_task_once(&d);
    assert_eq!(canonical(&d), reference);

    // Two shards killed mid-run: the others finish their own shards; a resume after the
    // leases expired runs exactly what is left and ends with the same dataset.
    let root = root_of("killed");
    let kill_after = Duration::from_millis(1500);
    let killed_at = Instant::now() + kill_after;
    let outs = together(spec, &root, env, &[1, 2], kill_after);
    for (code, log) in &outs {
        assert!(matches!(code, None | Some(0)), "{code:?}: {log}");
    }
    each_task_once(&read(&root));
    // Until the killed writers' leases have expired by the protocol's rule (PROTOCOL.md,
    // "Leases"): their length plus the storage's timestamp slack (2 s on S3, 0.1 s on disk)
    // after their last heartbeat, which was before the kill. Then the resume's recovery
    // removes them even when no other writer needed their tasks (and so never judged them).
    let slack = if env.is_empty() { 0.1 } else { 2.0 };
    let expired =
        killed_at + Duration::from_secs_f64(LEASE_SECS.parse::<f64>().unwrap() + slack + 0.5);
    std::thread::sleep(expired.saturating_duration_since(Instant::now()));
    let mut resume = bin();
    resume
        .args(["run", spec, "--out", &root, "--workers", "1"])
        .env("SYNTHSWEEP_LEASE_SECS", LEASE_SECS)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let o = resume.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let d = read(&root);
    each_task_once(&d);
    assert_eq!(canonical(&d), reference);
    let status = synthsweep_with(&["status", &root], env);
    assert!(
        text(&status).contains("live writers: none"),
        "{}",
        text(&status)
    );
    // Seeds by number (0, 1, 2, ..., 10, 11), not as text (0, 1, 10, 11, 2, ...).
    let out = stdout(&status);
    let seeds: Vec<&str> = out
        .split("by seed:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no seed counts: {out}"))
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim_start().split(':').next().unwrap())
        .collect();
    let expected: Vec<String> = (0..12).map(|s| s.to_string()).collect();
    assert_eq!(seeds, expected, "{out}");
}

fn synthsweep_with(args: &[&str], env: &[(&'static str, String)]) -> std::process::Output {
    let mut c = bin();
    c.args(args).envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    c.output().unwrap()
}

#[test]
fn shards_and_a_duplicate_run_together_and_killed_then_resumed_locally() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    scenario(
        move |name| base.join(name).display().to_string(),
        &[],
        read_local,
    );
}

#[test]
fn shards_and_a_duplicate_run_together_and_killed_then_resumed_on_s3() {
    let moto = shared_moto();
    moto.create_bucket("many-writers");
    scenario(
        |name| format!("s3://many-writers/{name}"),
        &s3_env(),
        read_s3,
    );
}
