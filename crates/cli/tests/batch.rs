//! `synthsweep run --batch N`: metamers and MAD competitions that share a batch key run as
//! one synthesis per worker slot, locally and over two processes; every task keeps its id,
//! its own result and its own commit, equal to the one-at-a-time run within the synthesis
//! fixtures' tolerances (not bit for bit: a batched convolution sums in another order).
use synthsweep_testkit::cli as common;

use common::{assert_bad_input, canonical, free_base, read_local, run, text, Sandbox};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use synthsweep_store::Dataset;

/// Metamers of two 24 px images, three seeds each (6 tasks); the stop rule ends some before
/// max_iter, at different iterations.
const METAMER: &str = r#"name = "batch-metamer"
synth = "metamer"
repeats = 3
[params]
max_iter = 30
stop_criterion = 2e-4
stop_iters_to_check = 3
store_progress = 10
model = { name = "gaussian", kernel_size = 5 }
[grid]
image = "images"
"#;

/// The quickstart's MAD study, shrunk: MSE against SSIM both ways, min and max, two images
/// (8 tasks).
const MAD: &str = r#"name = "batch-mad"
synth = "mad"
[params]
max_iter = 12
initial_noise = 0.1
[grid]
image = "images"
optimized_metric = [{ name = "mse" }, { name = "ssim_distance" }]
reference_metric = [{ name = "mse" }, { name = "ssim_distance" }]
minmax = ["min", "max"]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
"#;

/// The synthesis fixtures' loss tolerance for MAD with SSIM (`mad_ssim_dist_min_ein32`:
/// rtol 5e-4), the loosest of the metamer and MAD cases used here.
const RTOL: f64 = 5e-4;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= RTOL * b.abs() + 1e-8
}

/// Per task id: (status, iterations, final loss, losses by iteration).
type Summary = BTreeMap<String, (String, i64, Option<f64>, Vec<f64>)>;

fn summary(d: &Dataset) -> Summary {
    let mut s: Summary = d
        .tasks
        .iter()
        .map(|t| {
            (
                t.task_id.clone(),
                (
                    format!("{:?}", t.status),
                    t.iterations,
                    t.final_loss,
                    Vec::new(),
                ),
            )
        })
        .collect();
    let mut rows: Vec<_> = d.losses.iter().collect();
    rows.sort_by_key(|r| (r.task_id.clone(), r.iteration));
    for r in rows {
        s.get_mut(&r.task_id).unwrap().3.push(r.loss);
    }
    s
}

fn same_within_tolerance(what: &str, a: &Summary, b: &Summary) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: task ids"
    );
    for (id, (sa, na, fa, la)) in a {
        let (sb, nb, fb, lb) = &b[id];
        assert_eq!((sa, na), (sb, nb), "{what}, task {id}: status, iterations");
        assert_eq!(sa, "Done", "{what}, task {id}");
        assert!(
            close(fa.unwrap(), fb.unwrap()),
            "{what}, task {id}: final loss {fa:?} vs {fb:?}"
        );
        assert_eq!(la.len(), lb.len(), "{what}, task {id}: loss rows");
        for (k, (x, y)) in la.iter().zip(lb).enumerate() {
            assert!(
                close(*x, *y),
                "{what}, task {id}, iteration {k}: {x} vs {y}"
            );
        }
    }
}

/// Runs `spec` into `root` with one worker and `--batch N`; returns stderr at debug level
/// for the exec crate (it names each batched synthesis).
fn run_batched(spec: &Path, root: &str, n: &str) -> String {
    let o = common::bin()
        .args(["run", spec.to_str().unwrap(), "--out", root])
        .args(["--workers", "1", "--threads", "1", "--batch", n])
        .env("RUST_LOG", "synthsweep_exec=debug")
        .output()
        .unwrap();
    assert!(o.status.success(), "--batch {n}: {}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Two processes of one worker each, `--batch 4`.
fn run_two_processes(spec: &Path, root: &str) {
    let port = free_base(2).to_string();
    let children: Vec<_> = (0..2)
        .map(|i| {
            common::bin()
                .args(["run", spec.to_str().unwrap(), "--out", root])
                .args(["--workers", "1", "--threads", "1", "--batch", "4"])
                .args(["--processes", "2", "--process", &i.to_string()])
                .args(["--port", &port])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "process {i}: {}", text(&o));
    }
}

#[test]
fn batched_sweeps_equal_one_at_a_time_within_tolerance_locally_and_over_two_processes() {
    let sb = Sandbox::new().with_images(24);
    for (name, spec_text, tasks) in [("metamer", METAMER, 6), ("mad", MAD, 8)] {
        let spec = sb.write(&format!("{name}.toml"), spec_text);
        let one = sb.root(&format!("{name}-1"));
        let log = run_batched(&spec, &one, "1");
        assert!(
            !log.contains("as one synthesis"),
            "{name}: --batch 1 batched: {log}"
        );
        let reference = summary(&canonical(&read_local(&one)));
        assert_eq!(reference.len(), tasks, "{name}");
        let four = sb.root(&format!("{name}-4"));
        let log = run_batched(&spec, &four, "4");
        assert!(
            log.contains(&format!("4 {name} tasks as one synthesis")),
            "{name}: --batch 4 did not batch: {log}"
        );
        same_within_tolerance(name, &summary(&canonical(&read_local(&four))), &reference);
        if name == "metamer" {
            let stops: std::collections::BTreeSet<i64> = reference.values().map(|v| v.1).collect();
            assert!(
                stops.len() > 1,
                "the tasks should stop at different iterations: {stops:?}"
            );
        } else {
            let two = sb.root(&format!("{name}-p2"));
            run_two_processes(&spec, &two);
            same_within_tolerance(
                "two processes",
                &summary(&canonical(&read_local(&two))),
                &reference,
            );
        }
    }
    let spec = sb.path("metamer.toml");
    let o = run(&spec, &sb.root("zero"), &["--batch", "0"]);
    assert_bad_input(&o, &["--batch"]);
    assert!(!Path::new(&sb.root("zero")).exists(), "nothing written");
}

/// A preempted batch checkpoints each of its tasks on its own (none committed, none
/// failed); the next run resumes each task alone from its checkpoint, commits each once and
/// deletes the checkpoints.
#[test]
fn a_preempted_batch_checkpoints_each_task_and_the_next_run_resumes_them() {
    use std::io::{BufRead, BufReader};
    const LONG: i64 = 2000;
    let sb = Sandbox::new().with_images(32);
    let spec = sb.write(
        "long.toml",
        format!(
            r#"name = "batch-preempt"
synth = "metamer"
repeats = 3
[params]
image = "images/a.pgm"
max_iter = {LONG}
stop_criterion = 0.0
model = {{ name = "gaussian", kernel_size = 5 }}
"#
        ),
    );
    let root = sb.root("out");
    let start = || {
        common::bin()
            .args(["run", spec.to_str().unwrap(), "--out", &root])
            .args(["--workers", "1", "--threads", "1", "--batch", "4"])
            .env("RUST_LOG", "synthsweep_exec=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // 1. SIGUSR1 as soon as the batch starts: exit 75, three checkpoints, nothing committed.
    let mut child = start();
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("3 metamer tasks as one synthesis") {
            let ok = std::process::Command::new("kill")
                .args(["-USR1", &child.id().to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill -USR1 failed");
        }
        log += &line;
        log += "\n";
    }
    assert_eq!(child.wait().unwrap().code(), Some(75), "{log}");
    assert_eq!(log.matches("checkpoint saved to").count(), 3, "{log}");
    let checkpoints = || {
        std::fs::read_dir(Path::new(&root).join("_checkpoints"))
            .map(|rd| rd.count())
            .unwrap_or(0)
    };
    assert_eq!(checkpoints(), 3);
    assert!(read_local(&root).tasks.is_empty(), "nothing committed");
    // 2. The next run resumes the three, one at a time, to the end.
    let o = start().wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert_eq!(log.matches("resuming from checkpoint").count(), 3, "{log}");
    assert_eq!(checkpoints(), 0, "checkpoints deleted once committed");
    let d = read_local(&root);
    assert_eq!(d.tasks.len(), 3);
    assert!(d
        .tasks
        .iter()
        .all(|t| t.iterations == LONG && t.error.is_none()));
    assert_eq!(
        d.losses.len(),
        3 * LONG as usize,
        "each iteration recorded once"
    );
}
