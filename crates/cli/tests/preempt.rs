//! Preemption of `synthsweep run` without Slurm: SIGUSR1 or SIGTERM mid-task makes the run
//! commit its finished tasks, save the in-flight synthesis as a checkpoint and exit 75 (no
//! failed rows); the next run resumes from the checkpoint, deletes it once the task is
//! committed, and the results equal an uninterrupted run's bit for bit (CPU). Checked for
//! metamer and for geodesic (image pairs, its own stop rule and records).
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use synthsweep_store::{Dataset, OutputRoot, Store, TaskStatus};

use synthsweep_testkit::cli as common;

const EXIT_PREEMPTED: i32 = 75;

/// A 32x32 8-bit PGM with some structure (its negative when `negative`).
fn write_pgm(path: &Path, negative: bool) {
    let mut bytes = b"P5\n32 32\n255\n".to_vec();
    for y in 0..32u32 {
        for x in 0..32u32 {
            let v = ((x * 7 + y * 13 + (x * y) % 17) % 256) as u8;
            bytes.push(if negative { 255 - v } else { v });
        }
    }
    std::fs::write(path, bytes).unwrap();
}

/// The long task's iterations, metamer and geodesic alike (~2700 iterations/s on an idle
/// 2-core machine, ~7000/s on the CI machine: 3 s or more).
const LONG: i64 = 20000;

/// Two metamer tasks: seed 0 is quick, seed 1 long enough to be interrupted.
fn write_spec(dir: &Path) -> PathBuf {
    write_pgm(&dir.join("img.pgm"), false);
    let spec = dir.join("preempt.toml");
    std::fs::write(
        &spec,
        r#"name = "preempt"
synth = "metamer"
[params]
image = "img.pgm"
max_iter = 10
stop_criterion = 0.0
store_progress = 500
optimizer = { name = "adam", lr = 0.01 }
[grid]
model = [{ name = "gaussian", kernel_size = 5 }]
seed = [0, 1]
[[when]]
match = { seed = 1 }
set = { max_iter = 20000 }
"#,
    )
    .unwrap();
    spec
}

/// Two geodesic tasks between an image and its negative, as [`write_spec`]'s.
fn write_geodesic_spec(dir: &Path) -> PathBuf {
    write_pgm(&dir.join("img.pgm"), false);
    write_pgm(&dir.join("neg.pgm"), true);
    let spec = dir.join("preempt_geodesic.toml");
    std::fs::write(
        &spec,
        r#"name = "preempt-geodesic"
synth = "geodesic"
[params]
model = { name = "gaussian", kernel_size = 5 }
n_steps = 4
initial_sequence = "bridge"
max_iter = 10
stop_criterion = 0.0
store_progress = 7
optimizer = { name = "adam", lr = 0.01 }
[grid]
pairs = [["img.pgm", "neg.pgm"]]
seed = [0, 1]
[[when]]
match = { seed = 1 }
set = { max_iter = 20000 }
"#,
    )
    .unwrap();
    spec
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stderr: String,
}

/// When the signal goes: on events, never after a fixed time, so that a machine of any speed
/// still finds the long task in flight (a fixed 1.5 s let a fast CI machine finish the
/// resumed long task before the signal came).
#[derive(Clone, Copy)]
enum When {
    /// Once the quick task is committed (read from the root while the run writes it).
    QuickCommitted,
    /// Once a process printed that it resumes from a checkpoint, and 0.3 s more.
    Resumed,
}

/// Runs `synthsweep run SPEC --out ROOT --workers 2`; with a signal, sends it at `when`.
fn run(spec: &Path, root: &Path, signal: Option<(&str, When)>) -> Run {
    run_processes(spec, root, signal, 1).pop().unwrap()
}

/// As [`run`], on `n` processes of one run (1 worker each when n > 1); the signal goes to
/// every process, as Slurm sends it to every task of a step.
fn run_processes(spec: &Path, root: &Path, signal: Option<(&str, When)>, n: usize) -> Vec<Run> {
    let port = common::free_base(n).to_string();
    let (tx, rx) = mpsc::channel();
    let procs: Vec<_> = (0..n)
        .map(|i| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_synthsweep"));
            cmd.args([
                "run",
                spec.to_str().unwrap(),
                "--out",
                root.to_str().unwrap(),
            ])
            .args(["--threads", "1", "--batch-seconds", "0.2"]);
            if n == 1 {
                cmd.args(["--workers", "2"]);
            } else {
                cmd.args(["--workers", "1", "--processes", &n.to_string()])
                    .args(["--process", &i.to_string(), "--port", &port]);
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start synthsweep");
            let stderr = child.stderr.take().unwrap();
            let tx = tx.clone();
            let reader = std::thread::spawn(move || {
                let mut all = String::new();
                for line in BufReader::new(stderr).lines() {
                    let line = line.unwrap_or_default();
                    if line.contains("resuming from checkpoint") {
                        let _ = tx.send(());
                    }
                    all += &line;
                    all += "\n";
                }
                all
            });
            (child, reader)
        })
        .collect();
    if let Some((sig, when)) = signal {
        match when {
            When::Resumed => {
                rx.recv_timeout(Duration::from_secs(120))
                    .expect("the run never resumed from a checkpoint");
                std::thread::sleep(Duration::from_millis(300));
            }
            When::QuickCommitted => {
                let start = std::time::Instant::now();
                while committed(root) == 0 {
                    assert!(
                        start.elapsed() < Duration::from_secs(120),
                        "the quick task was never committed"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        for (child, _) in &procs {
            let ok = Command::new("kill")
                .args([&format!("-{sig}"), &child.id().to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill -{sig} failed");
        }
    }
    procs
        .into_iter()
        .map(|(mut child, reader)| {
            let status = child.wait().unwrap();
            Run {
                code: status.code(),
                stderr: reader.join().unwrap(),
            }
        })
        .collect()
}

/// `synthsweep status ROOT`'s standard output.
fn status(root: &Path) -> String {
    let o = common::synthsweep(&["status", root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o));
    common::stdout(&o)
}

/// Tasks committed so far (0 while the root is not yet set up).
fn committed(root: &Path) -> usize {
    Store::open(&OutputRoot::Local(root.to_path_buf()))
        .and_then(|s| s.read_dataset())
        .map(|d| d.tasks.len())
        .unwrap_or(0)
}

fn dataset(root: &Path) -> Dataset {
    let store = Store::open(&OutputRoot::Local(root.to_path_buf())).unwrap();
    let mut d = store.read_dataset().unwrap();
    d.tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    d.losses
        .sort_by(|a, b| (&a.task_id, a.iteration).cmp(&(&b.task_id, b.iteration)));
    d.images.sort_by(|a, b| {
        (&a.task_id, &a.role, a.index, a.iteration).cmp(&(
            &b.task_id,
            &b.role,
            b.index,
            b.iteration,
        ))
    });
    d
}

fn checkpoints(root: &Path) -> Vec<String> {
    match std::fs::read_dir(root.join("_checkpoints")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn preempted_run_checkpoints_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());
    preempt_resume_and_compare(dir.path(), &spec, LONG);
}

#[test]
fn preempted_geodesic_checkpoints_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_geodesic_spec(dir.path());
    preempt_resume_and_compare(dir.path(), &spec, LONG);
}

/// SIGUSR1, resume, SIGTERM, resume to the end; then the same sweep uninterrupted, and the
/// two datasets compared. The spec has a quick task (10 iterations) and a long one (`long`
/// iterations: the signals come once the quick task is committed and 0.3 s after the long one
/// resumed, and 20000 iterations take several seconds on any machine we know).
fn preempt_resume_and_compare(dir: &Path, spec: &Path, long: i64) {
    let spec = spec.to_path_buf();
    let (root, whole) = (dir.join("preempted"), dir.join("whole"));

    // 1. SIGUSR1 mid-task: exit 75, the quick task committed, the long one checkpointed.
    let r = run(&spec, &root, Some(("USR1", When::QuickCommitted)));
    assert_eq!(r.code, Some(EXIT_PREEMPTED), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("checkpoint saved to"), "{}", r.stderr);
    let d = dataset(&root);
    assert_eq!(d.tasks.len(), 1, "only the quick task is committed");
    assert_eq!(d.tasks[0].status, TaskStatus::Done);
    assert_eq!(d.tasks[0].iterations, 10);
    let ck = checkpoints(&root);
    assert_eq!(ck.len(), 1, "{ck:?}");
    let long_id = ck[0].strip_suffix(".safetensors").unwrap().to_string();
    assert_ne!(long_id, d.tasks[0].task_id);
    // `status` says how the last run ended (it said "finished" after a preemption).
    let st = status(&root);
    assert!(
        st.contains("(preempted)") && st.contains("run the same command again"),
        "{st}"
    );

    // 2. Resumed, then SIGTERM: checkpointed again, further along.
    let r = run(&spec, &root, Some(("TERM", When::Resumed)));
    assert_eq!(r.code, Some(EXIT_PREEMPTED), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "task {}: resuming from checkpoint",
            &long_id[..12]
        )),
        "{}",
        r.stderr
    );
    assert_eq!(checkpoints(&root), vec![format!("{long_id}.safetensors")]);
    assert_eq!(dataset(&root).tasks.len(), 1, "no failed or partial rows");

    // 3. Resumed to the end: exit 0, checkpoint gone.
    let r = run(&spec, &root, None);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains("resuming from checkpoint"),
        "{}",
        r.stderr
    );
    assert!(checkpoints(&root).is_empty(), "{:?}", checkpoints(&root));
    let st = status(&root);
    assert!(st.contains("(complete)") && !st.contains("again"), "{st}");

    // The same sweep uninterrupted.
    let r = run(&spec, &whole, None);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    assert!(!r.stderr.contains("checkpoint"), "{}", r.stderr);

    let (a, b) = (dataset(&root), dataset(&whole));
    let ids = |d: &Dataset| {
        d.tasks
            .iter()
            .map(|t| t.task_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert!(a.tasks.iter().all(|t| t.status == TaskStatus::Done));
    let iters = |d: &Dataset| d.tasks.iter().map(|t| t.iterations).collect::<Vec<_>>();
    assert_eq!(iters(&a), iters(&b));
    assert!(iters(&a).contains(&long));
    assert_eq!(a.losses.len(), long as usize + 10);
    assert_eq!(
        a.losses, b.losses,
        "losses, gradient and pixel-change norms bit for bit"
    );
    assert_eq!(a.images.len(), b.images.len());
    for (x, y) in a.images.iter().zip(&b.images) {
        assert_eq!(
            (&x.task_id, &x.role, x.index, x.iteration),
            (&y.task_id, &y.role, y.index, y.iteration)
        );
        assert_eq!(x.pixels, y.pixels, "{} {} pixels", x.task_id, x.role);
    }
}

/// A multi-process run preempted on every process checkpoints the in-flight task; a
/// multi-process re-run resumes it and deletes the checkpoint once the task is committed
/// (the multi-process layer used to keep it: it had its own commit loop).
#[test]
fn preempted_multiprocess_run_resumes_and_deletes_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());
    let root = dir.path().join("preempted");
    let runs = run_processes(&spec, &root, Some(("USR1", When::QuickCommitted)), 2);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.code, Some(EXIT_PREEMPTED), "process {i}:\n{}", r.stderr);
    }
    assert_eq!(
        dataset(&root).tasks.len(),
        1,
        "only the quick task is committed"
    );
    let ck = checkpoints(&root);
    assert_eq!(ck.len(), 1, "{ck:?}");
    let st = status(&root);
    assert!(st.contains("(preempted)"), "{st}");
    let runs = run_processes(&spec, &root, None, 2);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.code, Some(0), "process {i}:\n{}", r.stderr);
    }
    assert!(
        runs.iter()
            .any(|r| r.stderr.contains("resuming from checkpoint")),
        "{runs:?}"
    );
    assert!(checkpoints(&root).is_empty(), "{:?}", checkpoints(&root));
    let d = dataset(&root);
    assert!(d.tasks.iter().all(|t| t.status == TaskStatus::Done));
    let iters: Vec<i64> = d.tasks.iter().map(|t| t.iterations).collect();
    assert!(iters.contains(&LONG) && iters.contains(&10), "{iters:?}");
}

#[test]
fn bad_shard_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());
    for (shard, needle) in [("2/2", "shard"), ("x/3", "I/N"), ("1/0", "I/N")] {
        let out = Command::new(env!("CARGO_BIN_EXE_synthsweep"))
            .args(["run", spec.to_str().unwrap(), "--shard", shard])
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{shard}: {err}");
        assert!(err.contains(needle), "{shard}: {err}");
    }
}

/// A signal that arrives while the run is still planning is not lost (it was: the handlers
/// came after planning, so a script's background run, which inherits SIGINT ignored, ran
/// every task and exited 0, and SIGTERM ended it with 143, which Slurm scripts do not
/// requeue): SIGTERM exits 75 and SIGINT 130 before any task ran, nothing committed. Both
/// runs start together; a million lazy repeats keep them planning for seconds.
#[test]
fn a_signal_during_planning_stops_the_run_before_any_task() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("seed = [0, 1]\n", "")
        .replace(
            "synth = \"metamer\"\n",
            "synth = \"metamer\"\nrepeats = 1000000\n",
        );
    std::fs::write(&spec, text).unwrap();
    let cases = [("TERM", EXIT_PREEMPTED), ("INT", 130)];
    let children: Vec<_> = cases
        .iter()
        .map(|(sig, _)| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_synthsweep"))
                .args(["run", spec.to_str().unwrap(), "--out"])
                .arg(dir.path().join(sig))
                .env("RUST_LOG", "synthsweep=debug")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = child.stderr.take().unwrap();
            let pid = child.id().to_string();
            let sig = sig.to_string();
            let reader = std::thread::spawn(move || {
                let mut all = String::new();
                for line in BufReader::new(stderr).lines() {
                    let line = line.unwrap_or_default();
                    if line.contains("signal handlers installed") {
                        let ok = Command::new("kill")
                            .args([&format!("-{sig}"), &pid])
                            .status()
                            .unwrap()
                            .success();
                        assert!(ok, "kill -{sig}");
                    }
                    all += &line;
                    all += "\n";
                }
                all
            });
            (child, reader)
        })
        .collect();
    for ((mut child, reader), (sig, code)) in children.into_iter().zip(cases) {
        let status = child.wait().unwrap();
        let stderr = reader.join().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{sig}:\n{stderr}");
        assert!(stderr.contains("before any task started"), "{stderr}");
        assert_eq!(
            committed(&dir.path().join(sig)),
            0,
            "SIG{sig}: nothing committed"
        );
    }
}
