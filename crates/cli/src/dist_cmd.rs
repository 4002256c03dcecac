//! `synthsweep run` over several processes (`--processes N --process I`, or one task per
//! process of a Slurm step): the validated cluster, this process's devices and CPU share,
//! and the exit code from the run's outcome. The run itself is `synthsweep_dist::run`.
use crate::args::RunArgs;
use crate::output::{self, outln};
use crate::sweep_cmd::{
    git_commit, plan_spec, quit_store, root_for_writing, stopped_early, EndSession,
    EXIT_INTERRUPTED, EXIT_TASKS_FAILED,
};
use crate::{Exit, EXIT_STORAGE};
use anyhow::{bail, Context, Result};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use synthsweep_dist::protocol::StopKind;
use synthsweep_dist::{slurm, Cluster, DistOptions, DistReport, SlurmStep};
use synthsweep_models::device::parse_device;
use synthsweep_store::{
    new_run_id, LeaseOptions, OutputRoot, PrepareOptions, RunInfo, Store, WriterIdentity,
    WriterOptions,
};
use synthsweep_sweep::SweepSpec;
use tch::Device;

/// How long a process waits for all the others to connect before giving up (exit 75).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(300);
/// Sets that wait in seconds (tests use a few).
pub const CONNECT_SECS_ENV: &str = "SYNTHSWEEP_CONNECT_SECS";

/// The connection wait: [`CONNECT_SECS_ENV`] if set, else [`CONNECT_TIMEOUT`].
fn connect_timeout() -> Result<Duration> {
    match std::env::var(CONNECT_SECS_ENV) {
        Err(_) => Ok(CONNECT_TIMEOUT),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
            _ => bail!("{CONNECT_SECS_ENV}={v:?}: expected a number of seconds above 0"),
        },
    }
}

/// The cluster this run is part of, or `None` for a local run: from `--processes`/
/// `--process` (with `--hosts` or `--port`), else from a Slurm step of several tasks.
pub fn cluster(a: &RunArgs) -> Result<Option<Cluster>> {
    match (a.processes, a.process) {
        (Some(_), Some(_)) if a.shard.is_some() => {
            bail!("--shard runs one share of the tasks in this process alone; it cannot be combined with --processes/--process")
        }
        (Some(n), Some(i)) => {
            if n == 1 && i == 0 {
                return Ok(None);
            }
            Ok(Some(Cluster::from_args(n, i, a.hosts.as_deref(), a.port)?))
        }
        (Some(_), None) => bail!("--processes needs --process I, this process's index"),
        (None, Some(_)) => bail!("--process needs --processes N, the number of processes"),
        // A job array element runs its shard locally, whatever Slurm's environment says.
        (None, None) if a.shard.is_some() => Ok(None),
        (None, None) => {
            match SlurmStep::from_env(|k| std::env::var(k).ok())? {
                Some(step) => {
                    if a.hosts.is_some() {
                        bail!("--hosts needs --processes N --process I (inside Slurm, srun gives the hosts)");
                    }
                    let hosts = slurm::hostnames(&step.nodelist)?;
                    Ok(Some(step.cluster(&hosts, a.port)?))
                }
                None if a.hosts.is_some() || a.port.is_some() => {
                    bail!("--hosts and --port are for multi-process runs: add --processes N --process I")
                }
                None => Ok(None),
            }
        }
    }
}

/// This process's worker devices and libtorch threads. CUDA: one worker per GPU it sees
/// (Slurm's CUDA_VISIBLE_DEVICES narrows that), shared round-robin among the processes of
/// a node when they all see the same GPUs. CPU: the process's share of the cores
/// (SLURM_CPUS_PER_TASK, else the cores divided among the processes on this host).
fn devices(a: &RunArgs, cluster: &Cluster) -> Result<(Vec<Device>, usize)> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let share = cluster
        .cpus_per_process
        .unwrap_or(cores / cluster.local_processes())
        .max(1);
    let named: Vec<Device> = a
        .devices
        .iter()
        .map(|d| parse_device(d))
        .collect::<Result<_, _>>()?;
    let workers: Vec<Device> = if !named.is_empty() {
        named
    } else if tch::Cuda::is_available() && a.workers.is_none() {
        let (count, local, rank) = (
            tch::Cuda::device_count() as usize,
            cluster.local_processes(),
            cluster.local_rank(),
        );
        (0..count)
            .filter(|g| count < local || g % local == rank)
            .map(Device::Cuda)
            .collect()
    } else {
        let n = a.workers.unwrap_or(share);
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
    let threads = a.threads.unwrap_or((share / cpu_workers).max(1));
    Ok((workers, threads))
}

/// A run over several processes; `cancel` is set by the handlers `sweep_cmd::run` installed
/// first thing (see `stop_handlers`).
pub fn run(a: RunArgs, cluster: Cluster, cancel: Arc<AtomicBool>) -> Result<()> {
    let connect_timeout = connect_timeout()?;
    let spec = SweepSpec::from_path(&a.spec)?;
    let (workers, threads) = devices(&a, &cluster)?;
    let (root_text, root) = root_for_writing(&spec, &a.out)?;
    let plan = plan_spec(&spec, None)?;
    stopped_early(&cancel)?;
    let store = Store::open(&root)?;
    quit_store(&store);
    let run_id = new_run_id();
    // This process's writer session (lease) is started by the run once every process is
    // connected, before anything reads or writes the root (a failure to start it stops
    // every process alike); it ends here, whichever way the run returns.
    let lease = LeaseOptions::from_env()?;
    let identity = WriterIdentity {
        run_id: run_id.clone(),
        tag: format!("p{}", cluster.index),
        role: format!("process {} of {}", cluster.index, cluster.processes()),
    };
    let _session = EndSession(&store);
    let mut info = RunInfo::new(
        &run_id,
        std::fs::read_to_string(&a.spec).unwrap_or_default(),
    );
    info.spec_path = Some(a.spec.display().to_string());
    info.torch_version = Some(synthsweep_exec::worker::TORCH_VERSION.to_string());
    info.git_commit = git_commit();
    let mut writer = WriterOptions::new(&run_id);
    writer.max_tasks = a.batch_tasks;
    writer.max_age = Duration::from_secs_f64(a.batch_seconds);
    // Ctrl-C stops the whole run (a second one quits at once; the other processes then stop
    // as after a lost process). SIGTERM/SIGUSR1 (Slurm's time-limit warning or preemption,
    // sent to every process of the step): in-flight syntheses are checkpointed, every
    // process exits 75.
    let me = cluster.index;
    let opts = DistOptions {
        cluster,
        batch: a
            .batch
            .unwrap_or_else(|| synthsweep_exec::engine::default_batch(&workers)),
        devices: workers,
        intra_op_threads: threads,
        writer,
        prepare: PrepareOptions {
            retry_failed: a.retry_failed,
            ..Default::default()
        },
        run: info,
        root_text: root_text.clone(),
        connect_timeout,
        claim_poll: (lease.renew_every / 2)
            .clamp(Duration::from_millis(200), Duration::from_secs(5)),
        identity,
        lease,
    };
    let report = synthsweep_dist::run(Arc::new(plan), store.clone(), opts, cancel)
        .with_context(|| format!("process {me}"))?;
    outcome(&report, &root_text, &root)
}

/// Prints what the run did and turns it into the exit code. A run stopped early exits with
/// the code of what stopped it, on every process: 130 (Ctrl-C), 75 (preempted here, or a
/// process lost its lease), 74 (the storage failed on some process), 2 (bad input found
/// during the run). The process where it happened exits with its own error's code, the
/// same one.
fn outcome(r: &DistReport, root_text: &str, root: &OutputRoot) -> Result<()> {
    let e = &r.engine;
    let d = &e.dispatch;
    eprintln!(
        "process {}: {} done, {} failed, {} committed in {} batch(es); dispatch: {} task(s), {:.2} ms mean and {:.2} ms max from request to task",
        r.process,
        e.done,
        e.failed,
        e.committed,
        e.batches,
        d.tasks,
        d.mean().as_secs_f64() * 1e3,
        d.max.as_secs_f64() * 1e3
    );
    if let Some(stop) = &r.stop {
        match stop.kind {
            StopKind::Interrupted if synthsweep_exec::preempted() => {
                eprintln!("preempted: finished tasks committed, in-flight syntheses checkpointed; run the same command again to resume (exit {})", synthsweep_exec::EXIT_PREEMPTED);
                return Err(Exit(synthsweep_exec::EXIT_PREEMPTED).into());
            }
            StopKind::Interrupted => return Err(Exit(EXIT_INTERRUPTED).into()),
            StopKind::Storage => {
                eprintln!(
                    "error: run stopped: {} (storage failure, run the same command again once the storage is back; exit {EXIT_STORAGE})",
                    stop.message
                );
                return Err(Exit(EXIT_STORAGE).into());
            }
            StopKind::LeaseLost => {
                eprintln!(
                    "error: run stopped: {} (transient, run the same command again; exit {})",
                    stop.message,
                    synthsweep_exec::EXIT_PREEMPTED
                );
                return Err(Exit(synthsweep_exec::EXIT_PREEMPTED).into());
            }
            StopKind::Failed => bail!("run stopped: {}", stop.message),
        }
    }
    let failed = match &r.totals {
        Some(t) => {
            let per: Vec<String> = t.per_process.iter().map(|n| n.to_string()).collect();
            output::unless_closed(outln!(
                "results: {root_text} ({} done, {} failed in this run, on {} processes: {} task(s) each)",
                t.done,
                t.failed,
                r.processes,
                per.join("/")
            ))?;
            if t.by_others > 0 {
                eprintln!(
                    "{} task(s) of this run were committed by other writers on the root",
                    t.by_others
                );
            }
            if let Some((done, failed)) = r.committed_by_run {
                if done as u64 + failed as u64 != t.done + t.failed {
                    eprintln!(
                        "warning: {} task(s) finished but {} committed: a process could not commit; run the sweep again",
                        t.done + t.failed,
                        done + failed
                    );
                }
            }
            if matches!(root, OutputRoot::Local(_)) {
                output::unless_closed(outln!("look at them: python -c \"import polars as pl; print(pl.scan_parquet('{root_text}/losses/**/*.parquet').collect())\""))?;
            }
            t.failed
        }
        None => e.failed,
    };
    if failed > 0 {
        eprintln!("{failed} task(s) failed; see `synthsweep status {root_text}`");
        return Err(Exit(EXIT_TASKS_FAILED).into());
    }
    Ok(())
}
