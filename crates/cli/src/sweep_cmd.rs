//! `synthsweep plan`, `run` and `status`: a sweep spec planned, run on this machine and
//! summarized.
use crate::args::{PlanArgs, RunArgs, Shard, StatusArgs};
use crate::output::{self, out, outln};
use crate::Exit;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use synthsweep_exec::{
    engine, install_preemption_handlers, preempted, prepare_root, ClaimingSource, EngineOptions,
    PlanSource, TaskResolver, Worker, EXIT_PREEMPTED,
};
use synthsweep_models::device::{device_name, parse_device};
use synthsweep_store::{
    new_run_id, LeaseOptions, OutputRoot, PrepareOptions, RunInfo, Store, TaskStatus,
    WriterIdentity, WriterOptions,
};
use synthsweep_sweep::{CheckScope, Plan, PlanOptions, SweepError, SweepSpec, Task};
use tch::Device;

/// Exit code when some tasks failed (the others are committed).
pub(crate) const EXIT_TASKS_FAILED: u8 = 1;
/// How long a second Ctrl-C waits for commits in flight before the process exits.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

pub(crate) fn load_plan(path: &Path) -> Result<(SweepSpec, Plan)> {
    let spec = SweepSpec::from_path(path)?;
    let plan = plan_spec(&spec, None)?;
    Ok((spec, plan))
}

/// Plans `spec`, checking every task, or with `shard` only the shard's tasks (what that
/// process runs; the whole-spec checks, every value in at least one task, are made in
/// either case).
pub(crate) fn plan_spec(spec: &SweepSpec, shard: Option<Shard>) -> Result<Plan> {
    let check = match shard {
        Some(s) => CheckScope::Shard {
            index: s.index,
            count: s.count,
        },
        None => CheckScope::All,
    };
    Ok(spec
        .clone()
        .plan_with(Arc::new(TaskResolver::new()), PlanOptions { check })?)
}

/// The output root a run writes to, checked before any planning or other work (creating
/// nothing): S3 credentials present, a local folder that can be created and written to.
/// Either failure is one error naming the root (exit 2).
pub(crate) fn root_for_writing(
    spec: &SweepSpec,
    out: &Option<String>,
) -> Result<(String, OutputRoot)> {
    let root_text = default_root(spec, out);
    let root = OutputRoot::parse(&root_text)?;
    root.check_writable()?;
    Ok((root_text, root))
}

pub(crate) fn default_root(spec: &SweepSpec, out: &Option<String>) -> String {
    out.clone()
        .unwrap_or_else(|| format!("results/{}", spec.name()))
}

/// A quick timing of one task, extrapolated to its configured iteration count: the task
/// is run once with one iteration to warm the worker up (building the model or metric, as a
/// worker does once for all its tasks, and libtorch's first calls), then timed at 1, 2, 4,
/// ... iterations ([`calibration_points`]) and the line through the last two timings is
/// read at `max_iter` ([`extrapolate`]). Timing 5 iterations cold and scaling the whole time
/// by `max_iter / 5` counted the per-task setup `max_iter / 5` times: 8-15 s per task for a
/// 32 px MAD task that ran in 0.2 s.
fn calibrate(task: &Task) -> Option<(f64, String)> {
    let mut worker = Worker::new(Device::Cpu, "calibrate");
    let cancel = AtomicBool::new(false);
    let max_iter = task.params.max_iter();
    let mut timed = |iters: Option<usize>| {
        let mut t = task.clone();
        if let Some(n) = iters {
            t.params = Arc::new(t.params.with_max_iter(n));
        }
        let start = Instant::now();
        let _ = worker.run(&t, &cancel);
        start.elapsed().as_secs_f64()
    };
    timed(max_iter.map(|m| m.min(1)));
    match max_iter {
        Some(m) if m > 1 => {
            let (short, long) = calibration_points(m, |n| timed(Some(n)));
            let how = if long.0 == m {
                format!("from a calibration run of one task, warm, at its {m} iterations")
            } else {
                format!(
                    "from calibration runs of one task at {} and {} iterations, warm, \
                     extrapolated to {m}; an upper bound if tasks stop early",
                    short.0, long.0
                )
            };
            Some((extrapolate(short, long, m), how))
        }
        _ => Some((
            timed(max_iter),
            "from a calibration run of one task, warm".into(),
        )),
    }
}

/// A calibration run that takes this long (seconds) is long enough to extrapolate from.
const CALIBRATION_SECS: f64 = 0.5;

/// Times a task (`time(n)`: seconds at `n` iterations) at 1, 2, 4, ... iterations, up to
/// `max_iter`, until a run takes [`CALIBRATION_SECS`] after at least two runs: the last two
/// `(iterations, seconds)`. A fast task is timed up to its full count (a few runs of
/// under half a second each); a slow one twice, at 1 and 2 iterations.
fn calibration_points(
    max_iter: usize,
    mut time: impl FnMut(usize) -> f64,
) -> ((usize, f64), (usize, f64)) {
    let mut n = 1;
    let mut last = (n, time(n));
    let mut before = last;
    let mut runs = 1;
    while last.0 < max_iter && (runs < 2 || last.1 < CALIBRATION_SECS) {
        n = (n * 2).min(max_iter);
        before = last;
        last = (n, time(n));
        runs += 1;
    }
    (before, last)
}

/// Seconds per task at `max_iter` iterations from two timings `(iterations, seconds)` of
/// one task: the line through them (a cost per task plus a cost per iteration, neither
/// below 0) at `max_iter`.
fn extrapolate(short: (usize, f64), long: (usize, f64), max_iter: usize) -> f64 {
    let per_iter = if long.0 > short.0 {
        ((long.1 - short.1) / (long.0 - short.0) as f64).max(0.0)
    } else {
        0.0
    };
    let per_task = (short.1 - per_iter * short.0 as f64).max(0.0);
    per_task + per_iter * max_iter as f64
}

pub fn plan(a: PlanArgs) -> Result<()> {
    let (spec, plan) = load_plan(&a.spec)?;
    if a.json {
        for task in plan.iter() {
            let task = task?;
            let mut v = task.to_json();
            v["task_id"] = task.id().into();
            outln!("{v}")?;
        }
        return Ok(());
    }
    out!("{}", plan.summary())?;
    let root = default_root(&spec, &a.out);
    let recorded = recorded_mean_duration(&root);
    let estimate = match recorded {
        Some((mean, n)) => Some((mean, format!("mean of {n} tasks recorded in {root}"))),
        None if a.no_calibrate => None,
        None => plan
            .iter()
            .next()
            .and_then(|t| t.ok())
            .and_then(|t| calibrate(&t)),
    };
    match estimate {
        Some((per_task, how)) => {
            let (workers, threads) = default_split(Device::Cpu);
            let total = per_task * plan.len() as f64;
            outln!(
                "estimate: {} per task ({how}); {} on one worker, about {} with {workers} workers x {threads} threads",
                human_seconds(per_task),
                human_seconds(total),
                human_seconds(total / workers as f64)
            )?;
        }
        None => outln!("estimate: none (no recorded durations; calibration skipped)")?,
    }
    Ok(())
}

/// A run's worker devices, one entry per device with its number of workers
/// (`cpu (2 workers), cuda:0 (1 worker)`), in the order first used.
fn worker_devices(devices: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for d in devices {
        match counts.iter_mut().find(|(name, _)| name == d) {
            Some((_, n)) => *n += 1,
            None => counts.push((d, 1)),
        }
    }
    counts
        .iter()
        .map(|(d, n)| format!("{d} ({n} worker{})", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration for a person: µs, ms, s, min or h with one decimal (an estimate of 48 µs a
/// task printed as "0.00 s" beside a total of minutes).
fn human_seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn recorded_mean_duration(root: &str) -> Option<(f64, usize)> {
    let parsed = OutputRoot::parse(root).ok()?;
    if let OutputRoot::Local(p) = &parsed {
        if !p.join("tasks").is_dir() {
            return None;
        }
    }
    let rows = Store::open(&parsed).ok()?.read_tasks().ok()?;
    let done: Vec<f64> = rows
        .iter()
        .filter(|r| r.status == TaskStatus::Done)
        .map(|r| r.duration_s)
        .collect();
    (!done.is_empty()).then(|| (done.iter().sum::<f64>() / done.len() as f64, done.len()))
}

/// Workers and intra-op threads for a device kind on this machine. On CPU the default is
/// one worker per core with one libtorch thread each: measured on 2 cores (see README),
/// task-level parallelism beats intra-op parallelism for the small images of a sweep.
pub fn default_split(device: Device) -> (usize, usize) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    match device {
        Device::Cuda(_) => (1, cores),
        _ => (cores, 1),
    }
}

fn devices(a: &RunArgs) -> Result<(Vec<Device>, usize)> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let named: Vec<Device> = a
        .devices
        .iter()
        .map(|d| parse_device(d))
        .collect::<Result<_, _>>()?;
    let workers: Vec<Device> = if !named.is_empty() {
        named
    } else if tch::Cuda::is_available() && a.workers.is_none() {
        (0..tch::Cuda::device_count() as usize)
            .map(Device::Cuda)
            .collect()
    } else {
        let n = a.workers.unwrap_or_else(|| default_split(Device::Cpu).0);
        if n == 0 {
            bail!("--workers: expected at least 1");
        }
        vec![Device::Cpu; n]
    };
    let cpu_workers = workers.iter().filter(|d| **d == Device::Cpu).count();
    if let Err(e) = crate::args::at_most_cpus(cpu_workers) {
        bail!("--devices: {cpu_workers} cpu workers: {e}");
    }
    let cpu_workers = cpu_workers.max(1);
    let threads = a.threads.unwrap_or((cores / cpu_workers).max(1));
    Ok((workers, threads))
}

pub(crate) fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

type TaskIter<'p> = Box<dyn Iterator<Item = Result<Task, SweepError>> + Send + 'p>;

/// The plan's tasks, or those of one shard.
fn shard_tasks(plan: &Plan, shard: Option<Shard>) -> Result<TaskIter<'_>> {
    Ok(match shard {
        Some(s) => Box::new(plan.shard(s.index, s.count)?),
        None => Box::new(plan.iter()),
    })
}

/// The store whose writer session a second Ctrl-C closes (see [`stop_handlers`]); set once
/// the output root is open.
static QUIT_STORE: std::sync::OnceLock<Store> = std::sync::OnceLock::new();

/// The flag that stops a run, set by the signal handlers installed here, first thing in
/// `run` (a signal during planning or start-up is not lost: started in the background by a
/// script, a process inherits SIGINT ignored, and SIGTERM's default would end it with 143,
/// which a Slurm script does not requeue). First Ctrl-C: stop cleanly (finished tasks are
/// committed, in-flight ones dropped); a second one exits at once (within about a second:
/// commits in flight land first and the writer lease is deleted, so the next run cleans up
/// and takes over at once, see `Store::quit_session`); nothing half-written becomes visible
/// either way. SIGTERM/SIGUSR1 (Slurm's time-limit warning, preemption): in-flight
/// syntheses are checkpointed and the run exits 75. See [`stopped_early`].
pub(crate) fn stop_handlers() -> Result<Arc<AtomicBool>> {
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                if let Some(store) = QUIT_STORE.get() {
                    if !store.quit_session(QUIT_WAIT) {
                        eprintln!("quitting now: this run's writer lease expires by itself");
                    }
                }
                synthsweep_dist::abort::exit_now(EXIT_INTERRUPTED as i32);
            }
            eprintln!(
                "\ninterrupted: stopping, finished tasks are committed (Ctrl-C again to quit now)"
            );
        });
    }
    install_preemption_handlers(&cancel).context("cannot install signal handlers")?;
    tracing::debug!("signal handlers installed: Ctrl-C, SIGTERM and SIGUSR1 stop the run");
    Ok(cancel)
}

/// Registers the store a second Ctrl-C closes.
pub(crate) fn quit_store(store: &Store) {
    let _ = QUIT_STORE.set(store.clone());
}

/// Stops a run that was interrupted or preempted before it started any task: exit 130 or
/// 75 (nothing to checkpoint, nothing committed by this run; the same command resumes).
pub(crate) fn stopped_early(cancel: &AtomicBool) -> Result<()> {
    if !cancel.load(Ordering::SeqCst) {
        return Ok(());
    }
    if preempted() {
        eprintln!(
            "preempted before any task started; run the same command again to resume (exit {EXIT_PREEMPTED})"
        );
        Err(Exit(EXIT_PREEMPTED).into())
    } else {
        eprintln!("interrupted before any task started (exit {EXIT_INTERRUPTED})");
        Err(Exit(EXIT_INTERRUPTED).into())
    }
}

pub fn run(a: RunArgs) -> Result<()> {
    let cancel = stop_handlers()?;
    if let Some(cluster) = crate::dist_cmd::cluster(&a)? {
        return crate::dist_cmd::run(a, cluster, cancel);
    }
    let (workers, threads) = devices(&a)?;
    let spec = SweepSpec::from_path(&a.spec)?;
    let (root_text, root) = root_for_writing(&spec, &a.out)?;
    let plan = plan_spec(&spec, a.shard)?;
    stopped_early(&cancel)?;
    let store = Store::open(&root)?;
    quit_store(&store);
    // This run's writer session: its lease exists before it reads the ledger, claims a
    // task or writes a file, so other writers on the root spare what it does (PROTOCOL.md).
    let lease = LeaseOptions::from_env()?;
    let run_id = new_run_id();
    let role = a
        .shard
        .map(|s| format!("shard {}/{}", s.index, s.count))
        .unwrap_or_else(|| "local".into());
    store.start_session(
        WriterIdentity {
            run_id: run_id.clone(),
            tag: "p0".into(),
            role,
        },
        lease,
    )?;
    let _session = EndSession(&store);
    let prepared = prepare_root(
        &store,
        PrepareOptions {
            retry_failed: a.retry_failed,
            ..Default::default()
        },
    )?;
    let ledger = &prepared.ledger;
    // The tasks of this invocation: the whole plan, or one shard of it (a job array element).
    // Those already committed, and those of them committed as failed (left alone without
    // --retry-failed, but then the sweep is not all done).
    let tasks = || shard_tasks(&plan, a.shard);
    let (mut total, mut pending, mut failed_before) = (0u64, 0u64, 0u64);
    for t in tasks()? {
        if total % 4096 == 0 {
            stopped_early(&cancel)?;
        }
        total += 1;
        match t.as_ref().ok().and_then(|t| ledger.status(t.id())) {
            Some(TaskStatus::Failed) => failed_before += 1,
            Some(TaskStatus::Done) => {}
            None => pending += 1,
        }
    }
    let committed_here = total - pending;
    let shard_note = a
        .shard
        .map(|s| format!(" (shard {}/{} of {})", s.index, s.count, plan.len()))
        .unwrap_or_default();
    eprintln!(
        "sweep {}: {} tasks{shard_note}, {} already committed in {}, {} to run on {} worker(s) x {} thread(s) [{}]",
        spec.name(),
        total,
        committed_here,
        root_text,
        pending,
        workers.len(),
        threads,
        workers.iter().map(|d| device_name(*d)).collect::<Vec<_>>().join(", ")
    );
    if prepared.uncommitted_failed > 0 {
        eprintln!("retrying {} failed task(s)", prepared.uncommitted_failed);
    }
    let mut info = RunInfo::new(
        &run_id,
        std::fs::read_to_string(&a.spec).unwrap_or_default(),
    );
    info.spec_path = Some(a.spec.display().to_string());
    info.command = std::env::args().collect();
    info.torch_version = Some(synthsweep_exec::worker::TORCH_VERSION.to_string());
    info.git_commit = git_commit();
    info.devices = workers.iter().map(|d| device_name(*d)).collect();
    info.threads = threads;
    info.processes = 1;
    stopped_early(&cancel)?;
    store.write_run(&info)?;

    let mut writer = WriterOptions::new(&run_id);
    writer.writer_tag = "p0".into();
    writer.max_tasks = a.batch_tasks;
    writer.max_age = Duration::from_secs_f64(a.batch_seconds);
    let opts = EngineOptions {
        batch: a
            .batch
            .unwrap_or_else(|| synthsweep_exec::engine::default_batch(&workers)),
        devices: workers,
        intra_op_threads: threads,
        writer,
        progress: Some(pending),
    };
    let source = PlanSource::new(tasks()?, ledger);
    // Claim two tasks per worker at first (more while tasks are quick); wait for the tasks
    // other writers hold.
    let group = (2 * opts.devices.len()).max(2);
    let claiming = ClaimingSource::new(&source, &store, &cancel, group, lease.renew_every / 2);
    // A run that ends on an error still says so in its record (best effort: the storage
    // may be what failed).
    let stopped = |info: &mut RunInfo, e: &dyn std::fmt::Display| {
        info.finish();
        info.outcome = Some(format!("stopped: {e}"));
        let _ = store.write_run(info);
    };
    let report = match engine::run(&claiming, &store, ledger, &opts, &cancel) {
        Ok(r) => r,
        Err(e) => {
            stopped(&mut info, &e);
            return Err(e.into());
        }
    };
    if let Some(e) = claiming.error() {
        stopped(&mut info, &e);
        return Err(e.into());
    }
    let by_others = claiming.committed_by_others();
    if by_others > 0 {
        eprintln!("{by_others} task(s) of this run were committed by other writers on the root");
    }
    info.finish();
    info.outcome = Some(
        if report.preempted {
            "preempted"
        } else if report.interrupted {
            "interrupted"
        } else if report.failed > 0 {
            "tasks failed"
        } else {
            "complete"
        }
        .into(),
    );
    info.committed_done = Some(report.done as usize);
    info.committed_failed = Some(report.failed as usize);
    store.write_run(&info)?;
    if let Some(e) = source.error() {
        bail!("planning stopped the run: {e}");
    }
    // A closed stdout does not hide the run's own outcome (its exit code and stderr lines).
    output::unless_closed(outln!(
        "results: {root_text} ({} done, {} failed in this run)",
        report.done,
        report.failed
    ))?;
    if matches!(root, OutputRoot::Local(_)) {
        output::unless_closed(outln!("look at them: python -c \"import polars as pl; print(pl.scan_parquet('{root_text}/losses/**/*.parquet').collect())\""))?;
    }
    if report.preempted {
        eprintln!(
            "preempted: finished tasks committed, {} in-flight task(s) checkpointed; run the same command again to resume (exit {EXIT_PREEMPTED})",
            report.checkpointed
        );
        return Err(Exit(EXIT_PREEMPTED).into());
    }
    if report.interrupted {
        return Err(Exit(EXIT_INTERRUPTED).into());
    }
    if report.failed > 0 {
        eprintln!(
            "{} task(s) failed; see `synthsweep status {root_text}`",
            report.failed
        );
        return Err(Exit(EXIT_TASKS_FAILED).into());
    }
    if failed_before > 0 {
        eprintln!(
            "{failed_before} task(s) of this sweep failed in an earlier run; see `synthsweep status {root_text}`, `--retry-failed` runs them again"
        );
        return Err(Exit(EXIT_TASKS_FAILED).into());
    }
    Ok(())
}

/// Ends the writer session when the run returns, whichever way: gives back claims of tasks
/// not run, then deletes the lease (see `Store::finish_session`). A process that exits
/// without it (a second Ctrl-C, a kill) leaves its lease to expire.
pub(crate) struct EndSession<'a>(pub(crate) &'a Store);

impl Drop for EndSession<'_> {
    fn drop(&mut self) {
        match self.0.finish_session() {
            Ok(end) => {
                if end.released > 0 {
                    tracing::info!(
                        "gave back {} claimed task(s) this run did not run",
                        end.released
                    );
                }
                if let Some(r) = end.recovered.filter(|r| !r.is_clean()) {
                    tracing::info!(
                        "cleaned up after writers that died during this run: {} orphan file(s), {} staging file(s), {} expired lease(s), {} claim(s), {} mark(s)",
                        r.orphan_files_deleted.len(),
                        r.staging_files_deleted,
                        r.leases_expired.len(),
                        r.claims_deleted,
                        r.marks_deleted
                    );
                }
            }
            Err(e) => {
                tracing::warn!("ending the writer session: {e} (the lease expires by itself)")
            }
        }
    }
}

/// Reads one axis's value off a tasks row.
type AxisOf = fn(&synthsweep_store::TaskRow) -> Option<String>;

/// A local output root that `status` or `report` reads: an existing folder.
pub(crate) fn existing_root(text: &str, p: &Path) -> Result<()> {
    if p.exists() && !p.is_dir() {
        bail!(
            "{text}: a file, not an output root (an output root is the folder `run --out` wrote)"
        );
    }
    if !p.is_dir() {
        bail!("{text}: no such output root");
    }
    Ok(())
}

pub fn status(a: StatusArgs) -> Result<()> {
    let root = OutputRoot::parse(&a.root)?;
    if let OutputRoot::Local(p) = &root {
        existing_root(&a.root, p)?;
    }
    let store = Store::open(&root)?;
    let rows = store.read_tasks()?;
    let (runs, bad_runs) = store.read_runs_lenient()?;
    for b in &bad_runs {
        eprintln!("warning: run record {b}: left out");
    }
    if rows.is_empty() && runs.is_empty() && bad_runs.is_empty() {
        // Every run records itself in _runs/ before its first commit: neither a task nor a
        // run means this is not an output root (a wrong path, or the spec's folder).
        bail!(
            "{}: not an output root (no tasks/ and no _runs/ written by `synthsweep run`); expected the folder given to `run --out` (default results/<name>)",
            a.root
        );
    }
    out!("{}", synthsweep_store::Summary::from_rows(&rows))?;
    // Counts by axis: every task column that varies.
    let axes: [(&str, AxisOf); 6] = [
        ("image", |r| r.image.clone()),
        ("model", |r| r.model.clone()),
        ("optimized_metric", |r| r.optimized_metric.clone()),
        ("reference_metric", |r| r.reference_metric.clone()),
        ("minmax", |r| r.minmax.clone()),
        ("seed", |r| Some(r.seed.to_string())),
    ];
    for (name, get) in axes {
        let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for r in &rows {
            if let Some(v) = get(r) {
                let e = counts.entry(v).or_default();
                if r.status == TaskStatus::Done {
                    e.0 += 1
                } else {
                    e.1 += 1
                }
            }
        }
        if counts.len() > 1 {
            outln!("by {name}:")?;
            // Numbers numerically (seeds 0, 1, 2, 10), then text: as the report lists them.
            let mut counts: Vec<_> = counts.into_iter().collect();
            counts.sort_by(|a, b| synthsweep_report::axis_value_order(&a.0, &b.0));
            for (v, (d, f)) in counts {
                outln!("  {v}: {d} done, {f} failed")?;
            }
        }
    }
    let mut slow: Vec<_> = rows
        .iter()
        .filter(|r| r.status == TaskStatus::Done)
        .collect();
    slow.sort_by(|x, y| y.duration_s.total_cmp(&x.duration_s));
    if !slow.is_empty() {
        outln!("slowest tasks:")?;
        for r in slow.iter().take(a.slowest) {
            outln!(
                "  {:.2} s  {}  {} {} {}",
                r.duration_s,
                &r.task_id[..12.min(r.task_id.len())],
                r.synth,
                r.image.as_deref().unwrap_or(""),
                r.minmax.as_deref().unwrap_or("")
            )?;
        }
    }
    // Who is writing now (this writes one clock probe and deletes it again; a root that
    // cannot be written to still gets the rest of the status).
    match store.activity() {
        Ok(a) => out!("{a}")?,
        Err(e) => outln!("live writers: unknown ({e})")?,
    }
    if let Some(last) = runs.iter().max_by_key(|r| r.started()) {
        outln!(
            "last run {} ({}), started {}, on {}",
            last.run_id,
            last.state(),
            last.started_at,
            worker_devices(&last.devices)
        )?;
        if !last.completed() && last.finished_at.is_some() {
            outln!("  it did not run every task: run the same command again to resume")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{calibration_points, extrapolate, human_seconds, worker_devices};

    #[test]
    fn worker_devices_are_counted() {
        let d = |v: &[&str]| worker_devices(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(d(&["cpu", "cpu"]), "cpu (2 workers)");
        assert_eq!(
            d(&["cuda:0", "cpu", "cuda:0"]),
            "cuda:0 (2 workers), cpu (1 worker)"
        );
        assert_eq!(d(&[]), "");
    }

    #[test]
    fn durations_keep_their_digits_at_every_scale() {
        assert_eq!(human_seconds(48e-6), "48.0 µs");
        assert_eq!(human_seconds(0.25), "250.0 ms");
        assert_eq!(human_seconds(1.06), "1.1 s");
        assert_eq!(human_seconds(240.0), "4.0 min");
        assert_eq!(human_seconds(6.0 * 3600.0), "6.0 h");
    }

    /// The estimate of a synthetic task (seconds as a function of iterations), as `plan`
    /// computes it from its calibration runs, and the iteration counts it ran.
    fn estimate(max_iter: usize, cost: impl Fn(usize) -> f64) -> (f64, Vec<usize>) {
        let mut ran = Vec::new();
        let (short, long) = calibration_points(max_iter, |n| {
            ran.push(n);
            cost(n)
        });
        (extrapolate(short, long, max_iter), ran)
    }

    /// A 32 px MAD task: 0.15 s of setup per task and 0.5 ms an iteration, 0.2 s at 100
    /// iterations. The old estimate (5 iterations timed, scaled by 100 / 5) said 3 s, 15x
    /// too much, 40x from a cold run; this one says 0.2 s, from runs of up to 100
    /// iterations (each under half a second).
    #[test]
    fn the_per_task_cost_is_counted_once_not_per_iteration() {
        let mad = |n: usize| 0.15 + 0.0005 * n as f64;
        assert!(
            mad(5) * 100.0 / 5.0 > 10.0 * mad(100),
            "the old scaling was far off"
        );
        let (got, ran) = estimate(100, mad);
        assert!((got - mad(100)).abs() < 1e-9, "{got}");
        assert_eq!(ran, [1, 2, 4, 8, 16, 32, 64, 100]);
        // A slow task (2 s of setup, 1 s an iteration): two runs, then the line.
        let slow = |n: usize| 2.0 + n as f64;
        let (got, ran) = estimate(1000, slow);
        assert!((got - slow(1000)).abs() < 1e-9, "{got}");
        assert_eq!(ran, [1, 2]);
        // In between: doubling until a run takes half a second.
        let mid = |n: usize| 0.1 + 0.02 * n as f64;
        let (got, ran) = estimate(500, mid);
        assert!((got - mid(500)).abs() < 1e-9, "{got}");
        assert_eq!(ran, [1, 2, 4, 8, 16, 32]);
        // Noise that makes the longer run faster: no negative cost per iteration.
        assert!((extrapolate((1, 0.2), (6, 0.19), 1000) - 0.2).abs() < 1e-12);
        // One timing: that time.
        assert!((extrapolate((1, 0.3), (1, 0.3), 50) - 0.3).abs() < 1e-12);
    }
}
