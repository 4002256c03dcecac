//! `synthsweep run --processes N --process I`: real `synthsweep` processes on loopback, started
//! and stopped here. A sweep run over 2 or 3 processes writes exactly the dataset of a local
//! run (same task ids, bit-identical losses and images on CPU), each task once, with files
//! from more than one process; a process killed with SIGKILL (a worker or the coordinator)
//! makes the others exit non-zero without hanging, and a re-run finishes exactly the rest.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use synthsweep_store::{Dataset, ImageRow, LossRow, OutputRoot, Store, TaskStatus};

use common::free_base;
use synthsweep_testkit::cli as common;

/// Generous: only a hang (a bug) gets near it.
const HANG: Duration = Duration::from_secs(120);

/// The binary, with a short writer lease (4 s): a re-run after a process was killed takes
/// over the killed (and the exited) processes' claimed tasks once their leases expire.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_synthsweep"));
    c.env("SYNTHSWEEP_LEASE_SECS", "4");
    c
}

/// A 32x32 PGM with a deterministic pattern.
fn write_pgm(path: &Path, seed: u32) {
    let mut data = b"P5\n32 32\n255\n".to_vec();
    for y in 0..32u32 {
        for x in 0..32u32 {
            data.push(((x * 7 + y * 13 + seed * 31 + (x * y) % 17) % 256) as u8);
        }
    }
    std::fs::write(path, data).unwrap();
}

/// The test sweep: MAD, MSE vs SSIM both ways, min and max, on 3 tiny images: 12 tasks.
/// `max_iter` differs per image so tasks have unequal lengths.
fn write_spec(dir: &Path, name: &str, max_iter: u32) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for s in 0..3 {
        write_pgm(&images.join(format!("img{s}.pgm")), s);
    }
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(
        &spec,
        format!(
            r#"name = "{name}"
synth = "mad"
[params]
max_iter = {max_iter}
initial_noise = 0.1
seed = 0
[grid]
image = "images/*.pgm"
optimized_metric = [{{ name = "mse" }}, {{ name = "ssim_distance" }}]
reference_metric = [{{ name = "mse" }}, {{ name = "ssim_distance" }}]
minmax = ["min", "max"]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
"#
        ),
    )
    .unwrap();
    spec
}

const TASKS: usize = 12;

/// A running `synthsweep run`, its output going to files (read when it ends).
struct Proc {
    child: Child,
    log: PathBuf,
}

fn start(spec: &Path, out: &Path, extra: &[String], log: PathBuf) -> Proc {
    let child = bin()
        .arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(["--workers", "1", "--threads", "1", "--batch-tasks", "1"])
        .args(extra)
        .stdout(Stdio::from(
            std::fs::File::create(log.with_extension("out")).unwrap(),
        ))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start synthsweep");
    Proc { child, log }
}

impl Proc {
    /// Waits for the exit (the test fails on a hang instead of hanging itself).
    fn wait(mut self) -> (ExitStatus, String) {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
                text +=
                    &std::fs::read_to_string(self.log.with_extension("out")).unwrap_or_default();
                return (st, text);
            }
            if t.elapsed() > HANG {
                let _ = self.child.kill();
                panic!(
                    "synthsweep hung; its log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `n` ports free on 127.0.0.1 right now.
fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_base(1)).collect()
}

/// A host file naming `n` free loopback ports; a new file each call, since the tests of this
/// binary share one fixture folder and run at once (a shared `hosts2` let one test's
/// processes read another's ports).
fn hostfile(dir: &Path, n: usize) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, Ordering::SeqCst);
    let path = dir.join(format!("hosts{n}-{k}"));
    let text: String = free_ports(n)
        .iter()
        .map(|p| format!("127.0.0.1:{p}\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts processes 0..n of one run; `args(i)` gives process i's cluster arguments.
fn start_all(
    spec: &Path,
    out: &Path,
    n: usize,
    args: impl Fn(usize) -> Vec<String>,
    tag: &str,
) -> Vec<Proc> {
    (0..n)
        .map(|i| {
            let mut a = vec![
                "--processes".to_string(),
                n.to_string(),
                "--process".to_string(),
                i.to_string(),
            ];
            a.extend(args(i));
            start(spec, out, &a, out.with_extension(format!("{tag}.p{i}.log")))
        })
        .collect()
}

fn with_hosts(h: &Path) -> impl Fn(usize) -> Vec<String> + '_ {
    move |_| vec!["--hosts".to_string(), h.display().to_string()]
}

fn read(root: &Path) -> Dataset {
    Store::open(&OutputRoot::parse(root.to_str().unwrap()).unwrap())
        .unwrap()
        .read_dataset()
        .unwrap()
}

/// What must be equal between two runs of one task: everything but where, when and by whom.
type TaskKey = (String, i64, String, Option<String>);

/// Per task: its row's outcome, its losses and its images, ordered.
fn by_task(d: &Dataset) -> BTreeMap<String, (TaskKey, Vec<LossRow>, Vec<ImageRow>)> {
    let mut m = BTreeMap::new();
    for t in &d.tasks {
        let key = (
            t.status.to_string(),
            t.iterations,
            t.params.clone(),
            t.error.clone(),
        );
        let prev = m.insert(t.task_id.clone(), (key, Vec::new(), Vec::new()));
        assert!(prev.is_none(), "task {} committed twice", t.task_id);
    }
    for l in &d.losses {
        m.get_mut(&l.task_id)
            .expect("loss row of a committed task")
            .1
            .push(l.clone());
    }
    for i in &d.images {
        m.get_mut(&i.task_id)
            .expect("image row of a committed task")
            .2
            .push(i.clone());
    }
    for (_, losses, images) in m.values_mut() {
        losses.sort_by_key(|l| l.iteration);
        images.sort_by(|a, b| (&a.role, a.index).cmp(&(&b.role, b.index)));
    }
    m
}

/// Every committed task of `got` equals the reference's, bit for bit; with `complete`, all
/// of the reference's tasks are there.
fn assert_same(got: &Dataset, reference: &Dataset, complete: bool) {
    let (g, r) = (by_task(got), by_task(reference));
    for (id, task) in &g {
        let want = r.get(id).unwrap_or_else(|| panic!("unexpected task {id}"));
        assert_eq!(task.0, want.0, "task row of {id}");
        assert_eq!(task.1, want.1, "losses of {id}");
        assert_eq!(task.2, want.2, "images of {id}");
        assert!(!task.1.is_empty() && !task.2.is_empty(), "{id} has no rows");
    }
    if complete {
        assert_eq!(
            g.keys().collect::<Vec<_>>(),
            r.keys().collect::<Vec<_>>(),
            "not the same tasks"
        );
    }
}

/// The processes (`p0`, `p1`, ...) whose writers committed batches.
fn writers(d: &Dataset) -> BTreeSet<String> {
    d.tasks
        .iter()
        .map(|t| {
            t.worker
                .clone()
                .unwrap_or_default()
                .split('-')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    spec: PathBuf,
    reference: Dataset,
}

/// The spec and its local run's dataset (one worker, one thread), made once.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let spec = write_spec(dir.path(), "mp", 40);
        let out = dir.path().join("local");
        let (st, log) = start(&spec, &out, &[], dir.path().join("local.log")).wait();
        assert!(st.success(), "local run failed: {log}");
        let reference = read(&out);
        assert_eq!(reference.tasks.len(), TASKS);
        assert!(reference.tasks.iter().all(|t| t.status == TaskStatus::Done));
        Fixture {
            dir,
            spec,
            reference,
        }
    })
}

fn out_dir(name: &str) -> PathBuf {
    fixture().dir.path().join(name)
}

fn wait_all(ps: Vec<Proc>) -> Vec<(ExitStatus, String)> {
    ps.into_iter().map(Proc::wait).collect()
}

#[test]
fn two_processes_with_a_host_file_write_the_local_dataset() {
    let f = fixture();
    let out = out_dir("two");
    let hosts = hostfile(f.dir.path(), 2);
    let results = wait_all(start_all(&f.spec, &out, 2, with_hosts(&hosts), "two"));
    for (i, (st, log)) in results.iter().enumerate() {
        assert!(st.success(), "process {i}: {st}\n{log}");
    }
    let p0 = &results[0].1;
    assert!(p0.contains("to run on 2 processes"), "{p0}");
    assert!(
        p0.contains("results:") && p0.contains("12 done, 0 failed"),
        "{p0}"
    );
    assert!(
        results[1].1.contains("process 1 of 2: joined run"),
        "{}",
        results[1].1
    );
    let d = read(&out);
    assert_same(&d, &f.reference, true);
    assert_eq!(
        writers(&d).len(),
        2,
        "both processes should have committed tasks"
    );
    // One run, recorded by process 0 with the process count.
    let runs = Store::open(&OutputRoot::parse(out.to_str().unwrap()).unwrap())
        .unwrap()
        .read_runs()
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].processes, 2);
    assert_eq!(runs[0].committed_done, Some(TASKS));
    assert!(d.tasks.iter().all(|t| t.run_id == runs[0].run_id));
}

#[test]
fn three_processes_on_localhost_ports_write_the_local_dataset() {
    let f = fixture();
    let out = out_dir("three");
    let base = free_base(3).to_string();
    let results = wait_all(start_all(
        &f.spec,
        &out,
        3,
        |_| vec!["--port".to_string(), base.clone()],
        "three",
    ));
    for (i, (st, log)) in results.iter().enumerate() {
        assert!(st.success(), "process {i}: {st}\n{log}");
    }
    let d = read(&out);
    assert_same(&d, &f.reference, true);
    assert!(writers(&d).len() >= 2, "{:?}", writers(&d));
    // A second run finds nothing left to do.
    let hosts = hostfile(f.dir.path(), 2);
    let again = wait_all(start_all(
        &f.spec,
        &out,
        2,
        with_hosts(&hosts),
        "three-again",
    ));
    assert!(again.iter().all(|(st, _)| st.success()), "{again:?}");
    assert!(
        again[0].1.contains("12 already committed"),
        "{}",
        again[0].1
    );
    assert_eq!(read(&out).tasks.len(), TASKS);
}

/// Waits until at least `n` tasks are committed in `out` (each batch is one task here).
fn wait_for_commits(out: &Path, n: usize, procs: &mut [Proc]) {
    let t = Instant::now();
    loop {
        let count = std::fs::read_dir(out.join("tasks"))
            .map(|d| d.count())
            .unwrap_or(0);
        if count >= n {
            return;
        }
        for p in procs.iter_mut() {
            if let Some(st) = p.child.try_wait().unwrap() {
                panic!(
                    "a process ended before the kill ({st}):\n{}",
                    std::fs::read_to_string(&p.log).unwrap_or_default()
                );
            }
        }
        assert!(t.elapsed() < HANG, "no commit in {HANG:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills process `victim` of a running `n`-process run after its first commits, checks the
/// others exit non-zero with the lost-connection message and that what is committed is
/// consistent, then finishes the sweep with `rerun` processes (1: a local run) and compares
/// with the local run.
fn kill_and_resume(name: &str, n: usize, victim: usize, rerun: usize) {
    let f = fixture();
    let out = out_dir(name);
    let hosts = hostfile(f.dir.path(), n);
    let mut procs = start_all(&f.spec, &out, n, with_hosts(&hosts), name);
    wait_for_commits(&out, 2, &mut procs);
    let mut v = procs.remove(victim);
    v.child.kill().unwrap(); // SIGKILL
    let (st, _) = v.wait();
    assert_eq!(st.code(), None, "killed by a signal");
    for (i, (st, log)) in wait_all(procs).into_iter().enumerate() {
        assert!(
            !st.success(),
            "survivor {i} exited 0 after a peer was killed:\n{log}"
        );
        assert!(
            log.contains("lost the connection to another process"),
            "{log}"
        );
        // Transient exit on purpose (75, requeued by Slurm): see synthsweep_dist::abort.
        assert_eq!(st.code(), Some(75), "survivor {i}: {st}\n{log}");
    }
    // Whatever got committed is whole and correct; the rest is simply missing.
    let partial = read(&out);
    assert!(partial.tasks.len() >= 2 && partial.tasks.len() <= TASKS);
    assert_same(&partial, &f.reference, false);
    // The re-run runs exactly the tasks not committed and ends with the full dataset.
    let left = TASKS - partial.tasks.len();
    let results = if rerun == 1 {
        vec![start(&f.spec, &out, &[], out.with_extension("rerun.log")).wait()]
    } else {
        let hosts = hostfile(f.dir.path(), rerun);
        let tag = format!("{name}-rerun");
        wait_all(start_all(&f.spec, &out, rerun, with_hosts(&hosts), &tag))
    };
    for (st, log) in &results {
        assert!(st.success(), "re-run: {st}\n{log}");
    }
    let done_line = format!("{left} done, 0 failed");
    assert!(
        results[0].1.contains(&done_line),
        "`{done_line}` not in:\n{}",
        results[0].1
    );
    assert_same(&read(&out), &f.reference, true);
}

#[test]
fn a_killed_worker_process_stops_the_others_and_a_rerun_finishes_the_sweep() {
    kill_and_resume("kill-worker", 3, 1, 2);
}

#[test]
fn a_killed_coordinator_stops_the_others_and_a_local_rerun_finishes_the_sweep() {
    kill_and_resume("kill-coordinator", 2, 0, 1);
}

fn run_cli(args: &[&str]) -> Output {
    bin().args(args).output().expect("run synthsweep")
}

/// Exit code 2 and one `error:` line containing `needle`.
fn assert_bad_input(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "`{needle}` not in: {err}"
    );
}

#[test]
fn bad_process_arguments_are_one_line_errors() {
    let f = fixture();
    let spec = f.spec.to_str().unwrap();
    let out = out_dir("bad");
    let out = out.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec!["run", spec, "--out", out];
        a.extend_from_slice(extra);
        run_cli(&a)
    };
    assert_bad_input(&run(&["--processes", "2", "--process", "2"]), "--process 2");
    assert_bad_input(&run(&["--processes", "2"]), "--processes needs --process");
    assert_bad_input(&run(&["--process", "1"]), "--process needs --processes");
    assert_bad_input(&run(&["--port", "5000"]), "multi-process");
    let hosts = f.dir.path().join("bad-hosts");
    std::fs::write(&hosts, "127.0.0.1:1\n").unwrap();
    let h = hosts.to_str().unwrap();
    assert_bad_input(
        &run(&["--processes", "2", "--process", "0", "--hosts", h]),
        "1 address(es) for --processes 2",
    );
    std::fs::write(&hosts, "127.0.0.1:1\nnode7\n").unwrap();
    assert_bad_input(
        &run(&["--processes", "2", "--process", "0", "--hosts", h]),
        "bad-hosts:2",
    );
    assert!(!Path::new(out).exists(), "nothing written on bad input");
}

#[test]
fn processes_that_planned_different_sweeps_refuse_to_run() {
    let f = fixture();
    let other_dir = f.dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = write_spec(&other_dir, "mp", 41);
    let out = out_dir("mismatch");
    let hosts = hostfile(f.dir.path(), 2);
    let h = vec!["--hosts".to_string(), hosts.display().to_string()];
    let a = |i: usize| {
        let mut v = vec![
            "--processes".to_string(),
            "2".to_string(),
            "--process".to_string(),
            i.to_string(),
        ];
        v.extend(h.clone());
        v
    };
    let p0 = start(&f.spec, &out, &a(0), out.with_extension("p0.log"));
    let p1 = start(&other, &out, &a(1), out.with_extension("p1.log"));
    for (i, (st, log)) in [p0.wait(), p1.wait()].into_iter().enumerate() {
        assert_eq!(st.code(), Some(2), "process {i}: {log}");
        assert!(
            log.contains("planned another sweep than process 0"),
            "{log}"
        );
    }
    assert!(read(&out).tasks.is_empty(), "no task may run");
}

/// Processes that cannot all connect exit 75 (transient, the Slurm script requeues), with
/// one line naming this process, its address and the processes it waited for: a peer that
/// never starts (the wait cut to 1 s by `SYNTHSWEEP_CONNECT_SECS`), and a port another
/// program holds (at once). A bad wait value is bad input (2). No task runs.
#[test]
fn processes_that_cannot_connect_exit_as_transient_naming_the_addresses() {
    let f = fixture();
    let out = out_dir("noconnect");
    let hosts = hostfile(f.dir.path(), 2);
    let text = std::fs::read_to_string(&hosts).unwrap();
    let addrs: Vec<&str> = text.lines().collect();
    let run = |wait: &str| {
        bin()
            .env("SYNTHSWEEP_CONNECT_SECS", wait)
            .arg("run")
            .arg(&f.spec)
            .arg("--out")
            .arg(&out)
            .args(["--processes", "2", "--process", "0", "--hosts"])
            .arg(&hosts)
            .output()
            .expect("run synthsweep")
    };
    // Process 1 never starts.
    let o = run("1");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "{err}");
    let want = format!(
        "process 0 (listening on {}) could not connect to all 2 processes within 1 s (waited for process 1 at {}",
        addrs[0], addrs[1]
    );
    assert!(err.contains(&want), "`{want}` not in: {err}");
    assert_eq!(err.matches("could not connect").count(), 1, "{err}");
    // Process 0's port is held by another program.
    let held = std::net::TcpListener::bind(addrs[0]).unwrap();
    let o = run("60");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!("process 0 cannot listen on {}", addrs[0]))
            && err.contains("holds the port"),
        "{err}"
    );
    drop(held);
    assert_bad_input(&run("soon"), "SYNTHSWEEP_CONNECT_SECS=\"soon\"");
    assert!(read(&out).tasks.is_empty(), "no task may run");
}

/// Whether something listens on TCP `port` (IPv4), from `/proc/net/tcp`: a look that does
/// not touch the port.
fn listening(port: u16) -> bool {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let want = format!(":{port:04X}");
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
    })
}

/// A Ctrl-C while the processes connect stops the process at once (exit 130, nothing
/// written), instead of after the connection wait (here 60 s).
#[test]
fn ctrl_c_while_the_processes_connect_stops_at_once() {
    let f = fixture();
    let out = out_dir("ctrlc_connect");
    let hosts = hostfile(f.dir.path(), 2);
    let text = std::fs::read_to_string(&hosts).unwrap();
    let port: u16 = text
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let args: Vec<String> = ["--processes", "2", "--process", "0", "--hosts"]
        .iter()
        .map(|s| s.to_string())
        .chain([hosts.display().to_string()])
        .collect();
    let mut p = start(&f.spec, &out, &args, out.with_extension("p0.log"));
    let pid = p.child.id().to_string();
    // Process 1 never starts: process 0 listens and waits for it.
    let t = Instant::now();
    while !listening(port) {
        assert!(t.elapsed() < HANG, "process 0 never listened on {port}");
        if let Some(st) = p.child.try_wait().unwrap() {
            panic!("process 0 ended ({st}) before it listened");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let (st, log) = p.wait();
    assert_eq!(st.code(), Some(130), "{log}");
    assert!(
        sent.elapsed() < Duration::from_secs(30),
        "{:?}",
        sent.elapsed()
    );
    assert!(
        log.contains("process 0 interrupted while the 2 processes connected: nothing was written"),
        "{log}"
    );
    assert!(
        !out.join("_leases").exists() && !out.join("tasks").exists(),
        "{log}"
    );
}

/// The lease id of process `p` of a run on `out` once its lease exists (`<run>-p<P>-<hex>`).
fn lease_of(out: &Path, p: usize, procs: &mut [Proc]) -> String {
    let t = Instant::now();
    let tag = format!("-p{p}-");
    loop {
        let found = std::fs::read_dir(out.join("_leases"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_suffix(".json")
                    .filter(|n| n.contains(&tag))
                    .map(str::to_string)
            })
            .next();
        if let Some(id) = found {
            return id;
        }
        for q in procs.iter_mut() {
            if let Some(st) = q.child.try_wait().unwrap() {
                panic!(
                    "a process ended before its lease was seen ({st}):\n{}",
                    std::fs::read_to_string(&q.log).unwrap_or_default()
                );
            }
        }
        assert!(t.elapsed() < HANG, "no lease of process {p} in {HANG:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A storage failure on one process (its staging folder replaced by a file, so its next
/// commit cannot write: ENOTDIR, as a disk gone read-only or a lost mount would fail)
/// stops every process with exit 74, the transient storage-failure code the Slurm script
/// requeues on (it was 2, "bad input", on the processes where it did not happen); the
/// same command run again once the storage is back finishes the sweep.
fn storage_failure_on(name: &str, victim: usize) {
    let f = fixture();
    let out = out_dir(name);
    let hosts = hostfile(f.dir.path(), 2);
    let mut procs = start_all(&f.spec, &out, 2, with_hosts(&hosts), name);
    // After process 0's start-up recovery (it would delete a stray file in _staging/):
    // the run record is written after it.
    let t = Instant::now();
    while std::fs::read_dir(out.join("_runs")).map_or(0, |d| d.count()) == 0 {
        assert!(t.elapsed() < HANG, "no run record");
        std::thread::sleep(Duration::from_millis(5));
    }
    let lease = lease_of(&out, victim, &mut procs);
    let blocker = out.join("_staging").join(&lease);
    let _ = std::fs::remove_dir_all(&blocker);
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"not a folder").unwrap();
    for (i, (st, log)) in wait_all(procs).into_iter().enumerate() {
        assert_eq!(st.code(), Some(74), "process {i}: {st}\n{log}");
        assert!(log.contains("storage failure"), "process {i}:\n{log}");
        assert!(!log.contains("panicked"), "process {i}:\n{log}");
    }
    let partial = read(&out);
    assert!(
        partial.tasks.len() < TASKS,
        "the victim's tasks are missing"
    );
    assert_same(&partial, &f.reference, false);
    // The storage is back: the same command finishes the sweep (the victim's claims are
    // taken over once its lease, left to expire after its failed commit, has).
    std::fs::remove_file(&blocker).unwrap();
    let hosts = hostfile(f.dir.path(), 2);
    let again = wait_all(start_all(
        &f.spec,
        &out,
        2,
        with_hosts(&hosts),
        &format!("{name}-again"),
    ));
    for (i, (st, log)) in again.iter().enumerate() {
        assert!(st.success(), "re-run, process {i}: {st}\n{log}");
    }
    assert_same(&read(&out), &f.reference, true);
}

#[test]
fn a_storage_failure_on_a_worker_process_exits_74_everywhere() {
    storage_failure_on("storage-p1", 1);
}

#[test]
fn a_storage_failure_on_the_coordinator_exits_74_everywhere() {
    storage_failure_on("storage-p0", 0);
}

/// A process stalled past its writer lease (SIGSTOP for longer than the 4 s lease) must not
/// commit any more once it runs again (others may have taken its tasks over): it stops the
/// run, and every process exits 75 (transient, requeued), not 2.
#[test]
fn a_process_that_lost_its_lease_stops_the_run_with_exit_75_everywhere() {
    let f = fixture();
    let out = out_dir("stalled");
    let hosts = hostfile(f.dir.path(), 2);
    let mut procs = start_all(&f.spec, &out, 2, with_hosts(&hosts), "stalled");
    wait_for_commits(&out, 2, &mut procs);
    let pid = procs[1].child.id().to_string();
    let signal = |sig: &str| {
        let st = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(st.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_secs(6));
    signal("-CONT");
    for (i, (st, log)) in wait_all(procs).into_iter().enumerate() {
        assert_eq!(st.code(), Some(75), "process {i}: {st}\n{log}");
        assert!(log.contains("lease"), "process {i}:\n{log}");
    }
    let partial = read(&out);
    assert_same(&partial, &f.reference, false);
}

/// A multi-process run and a local run of the same sweep started together on one root:
/// both exit 0, every task is committed once, and the tasks the multi-process run left to
/// the local run are counted as committed by other writers, not as abandoned: its own
/// `done` plus those equal what it had to run.
#[test]
fn tasks_committed_by_another_run_are_counted_as_such_and_exit_0() {
    let f = fixture();
    let out = out_dir("beside-local");
    let hosts = hostfile(f.dir.path(), 2);
    let local = start(&f.spec, &out, &[], out.with_extension("local.log"));
    let procs = start_all(&f.spec, &out, 2, with_hosts(&hosts), "beside");
    let (lst, llog) = local.wait();
    assert!(lst.success(), "local run: {lst}\n{llog}");
    let results = wait_all(procs);
    for (i, (st, log)) in results.iter().enumerate() {
        assert!(st.success(), "process {i}: {st}\n{log}");
    }
    let p0 = &results[0].1;
    let number_before = |text: &str, what: &str| -> Option<u64> {
        let at = text.find(what)?;
        let word = text[..at].split_whitespace().last()?;
        word.trim_start_matches('(').parse().ok()
    };
    let pending = number_before(p0, "to run on 2 processes").expect(p0);
    let done = number_before(p0, "done, 0 failed in this run").expect(p0);
    let others =
        number_before(p0, "task(s) of this run were committed by other writers").unwrap_or(0);
    assert_eq!(done + others, pending, "{p0}");
    let local_done = number_before(&llog, "done, 0 failed in this run").expect(&llog);
    assert_eq!(done + local_done, TASKS as u64, "{p0}\n{llog}");
    eprintln!("the multi-process run left {others} task(s) to the local run");
    assert_same(&read(&out), &f.reference, true);
}
