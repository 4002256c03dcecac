//! The engine that runs a sweep in one process, whether the process runs alone or as one
//! of many: one worker thread per device slot, each asking a [`TaskSource`] for its next
//! task, running it on its [`Worker`] (models built once) and sending the result to one
//! writer, which batches and commits under the store's exactly-once protocol, deletes the
//! checkpoint of a task resumed from one once it is committed, and keeps the progress
//! display current. Ctrl-C or a preemption signal (`cancel`) stops the slots at the end of
//! their current iteration (a preemption checkpoints in-flight syntheses first); finished
//! results are committed.
//!
//! A local run and a multi-process run differ only in the source (a [`PlanSource`] over
//! the plan, or `synthsweep-dist`'s remote source fed by the coordinator on process 0),
//! as timely's one `Configuration` runs one thread, many threads or many processes
//! through one worker closure. A fix in here lands in both.
//!
//! Many writers on one root (array shards, several runs): the caller starts the store's
//! writer session (its lease, renewed by the store's heartbeat thread) before preparing
//! the root, and wraps its source in a [`ClaimingSource`](crate::claiming::ClaimingSource),
//! which claims each task before a slot gets it and waits for tasks other live writers
//! hold; the writer commits only tasks whose claim is still this session's.
//!
//! Where later work plugs in:
//! - storage failures: every error of the output root comes back as [`ExecError::Store`],
//!   distinct from bad input, whatever the source;
//! - several tasks per slot at once: a slot asks its source for up to
//!   [`EngineOptions::batch`] tasks and runs those that share a batch key as one synthesis
//!   ([`Worker::run_batch`]), the others one at a time.
//!
//! [`PlanSource`]: crate::source::PlanSource
use crate::checkpoint::{preempted, Checkpoints};
use crate::error::ExecError;
use crate::progress::Progress;
use crate::source::{TaskEnd, TaskSource};
use crate::worker::{Outcome, Worker};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use synthsweep_store::{
    Ledger, PrepareOptions, Prepared, Store, StoreError, TaskResult, TaskStatus, Writer,
    WriterOptions, WriterStats,
};
use tch::Device;

/// How the engine runs in this process.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// One worker slot (thread) per entry.
    pub devices: Vec<Device>,
    /// libtorch intra-op threads (process-wide), ≥ 1.
    pub intra_op_threads: usize,
    /// Tasks a slot asks for at once (≥ 1): those that share a batch key
    /// ([`methods::batch_compatible`]) run as one synthesis over a (B, C, H, W) tensor, the
    /// others one at a time. Each task keeps its own id, result, commit and checkpoint.
    ///
    /// [`methods::batch_compatible`]: crate::methods::batch_compatible
    pub batch: usize,
    /// Batch limits, run id and writer tag (`p<I>`; slots are tagged `p<I>-w<k>`).
    pub writer: WriterOptions,
    /// `Some(n)`: show the progress of the `n` tasks this engine is expected to run (a bar
    /// on a terminal, log lines otherwise). `None`: progress is shown elsewhere (process 0's
    /// coordinator shows a multi-process run's).
    pub progress: Option<u64>,
}

/// The `--batch` default for slots on `devices`: [`DEFAULT_BATCH_CUDA`] when any is a
/// CUDA device, else [`DEFAULT_BATCH_CPU`] (chosen by `scripts/bench_batch.sh`; see the
/// README's performance section).
pub fn default_batch(devices: &[Device]) -> usize {
    if devices.iter().any(|d| matches!(d, Device::Cuda(_))) {
        DEFAULT_BATCH_CUDA
    } else {
        DEFAULT_BATCH_CPU
    }
}

/// Tasks per slot at once on the CPU when `--batch` is not given.
pub const DEFAULT_BATCH_CPU: usize = 1;
/// Tasks per slot at once on a GPU when `--batch` is not given (not measured on a GPU yet:
/// a 64 px task leaves most of one idle, so a batch of 16 is a conservative start).
pub const DEFAULT_BATCH_CUDA: usize = 16;

/// How long slots waited between asking their source for a task and getting an answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DispatchStats {
    /// Requests answered with at least one task.
    pub tasks: u64,
    pub total: Duration,
    pub max: Duration,
}

impl DispatchStats {
    /// Mean wait per answered request.
    pub fn mean(&self) -> Duration {
        if self.tasks == 0 {
            Duration::ZERO
        } else {
            self.total / self.tasks as u32
        }
    }

    fn record(&mut self, wait: Duration) {
        self.tasks += 1;
        self.total += wait;
        self.max = self.max.max(wait);
    }
}

/// What one engine run did.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    /// Tasks run to the end by this engine, by status (committed or not).
    pub done: u64,
    pub failed: u64,
    /// Tasks given up in flight (Ctrl-C, preemption).
    pub cancelled: u64,
    /// Results committed by this engine's writer, and in how many batches.
    pub committed: u64,
    pub batches: usize,
    /// `cancel` was set: stopped early.
    pub interrupted: bool,
    /// Stopped by SIGTERM/SIGUSR1 (see [`crate::checkpoint`]): exit with `EXIT_PREEMPTED`.
    pub preempted: bool,
    /// In-flight tasks saved as checkpoints when the run was preempted.
    pub checkpointed: u64,
    /// How long idle slots waited for their source.
    pub dispatch: DispatchStats,
}

/// Makes the output root ready before anything runs: the store's recovery (and
/// `--retry-failed`), then the checkpoints of tasks committed since they were saved are
/// deleted. Whoever prepares a root (a local run, process 0 of a multi-process run) calls
/// this once, before any engine writes.
///
/// # Errors
/// [`ExecError::Store`] when the root cannot be listed, read or cleaned.
pub fn prepare_root(store: &Store, opts: PrepareOptions) -> Result<Prepared, ExecError> {
    let prepared = store.prepare(opts)?;
    if let Some(ck) = Checkpoints::for_root(store.root()) {
        let left = ck.prune(&prepared.ledger);
        if left > 0 {
            tracing::info!(
                "{left} checkpoint(s) in {}: those tasks resume where they stopped",
                ck.dir().display()
            );
        }
    }
    Ok(prepared)
}

/// What the slots and the writer share.
struct Shared<'a> {
    source: &'a dyn TaskSource,
    cancel: &'a AtomicBool,
    /// Set when committing failed (or a slot could not start): slots take no new task
    /// (their results could not be committed); the error ends the run once the in-flight
    /// tasks are done.
    store_failed: AtomicBool,
    progress: Option<Progress>,
    batch: usize,
    cancelled: AtomicU64,
    dispatch: Mutex<DispatchStats>,
}

impl Shared<'_> {
    fn stopping(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.store_failed.load(Ordering::Relaxed)
    }
}

/// Runs every task `source` hands out on `opts.devices` and commits the results to `store`
/// (`ledger`: what was committed when the run started). Returns when the source has no
/// more tasks for any slot, or when `cancel` is set (finished tasks committed, in-flight
/// ones abandoned, or checkpointed on a preemption), or after a commit failed. A task with
/// a checkpoint resumes from it; the checkpoint is deleted once the task is committed.
///
/// # Errors
/// [`ExecError::Store`] when the writer cannot be set up or a commit fails; results not
/// committed by then run again next time.
pub fn run(
    source: &dyn TaskSource,
    store: &Store,
    ledger: &Ledger,
    opts: &EngineOptions,
    cancel: &AtomicBool,
) -> Result<RunReport, ExecError> {
    tch::set_num_threads(opts.intra_op_threads.max(1) as i32);
    let checkpoints = Checkpoints::for_root(store.root());
    let mut committer = Committer {
        writer: store.writer(opts.writer.clone(), ledger)?,
        uncommitted: Vec::new(),
        checkpoints: checkpoints.as_ref(),
    };
    let shared = Shared {
        source,
        cancel,
        store_failed: AtomicBool::new(false),
        progress: opts.progress.map(Progress::new),
        batch: opts.batch.max(1),
        cancelled: AtomicU64::new(0),
        dispatch: Mutex::default(),
    };
    let mut report = RunReport::default();
    let (tx, rx) = mpsc::channel::<TaskResult>();
    std::thread::scope(|scope| -> Result<(), ExecError> {
        for (slot, &device) in opts.devices.iter().enumerate() {
            let mut worker = Worker::new(device, format!("{}-w{slot}", opts.writer.writer_tag));
            worker.set_checkpoints(checkpoints.clone());
            let (tx, shared) = (tx.clone(), &shared);
            std::thread::Builder::new()
                .name(format!("slot {slot}"))
                .spawn_scoped(scope, move || slot_loop(slot, worker, shared, tx))
                .map_err(|e| {
                    // The slots already started stop after their current task.
                    shared.store_failed.store(true, Ordering::SeqCst);
                    ExecError::Thread(e.to_string())
                })?;
        }
        drop(tx);
        let written = committer.receive(&rx, &shared, &mut report);
        if let Err(e) = &written {
            shared.store_failed.store(true, Ordering::SeqCst);
            source.abort(e);
        }
        Ok(written?)
    })?;
    let stats = committer.finish()?;
    if let Some(p) = &shared.progress {
        p.finish();
    }
    report.committed = stats.tasks as u64;
    report.batches = stats.batches;
    report.cancelled = shared.cancelled.load(Ordering::Relaxed);
    report.interrupted = cancel.load(Ordering::Relaxed);
    report.preempted = report.interrupted && preempted();
    report.checkpointed = checkpoints.as_ref().map_or(0, |c| c.saved());
    report.dispatch = shared.dispatch.into_inner().expect("dispatch stats");
    Ok(report)
}

/// One slot: ask the source, run what it hands out, send results to the writer, report
/// how each task ended; until the source has nothing more or the run is stopping.
fn slot_loop(
    slot: usize,
    mut worker: Worker,
    shared: &Shared<'_>,
    results: mpsc::Sender<TaskResult>,
) {
    while !shared.stopping() {
        let asked = Instant::now();
        let tasks = shared.source.next(slot, shared.batch);
        if let Some(p) = &shared.progress {
            p.set_committed_elsewhere(shared.source.committed_elsewhere());
        }
        if tasks.is_empty() {
            break;
        }
        shared
            .dispatch
            .lock()
            .expect("dispatch stats")
            .record(asked.elapsed());
        // Tasks that share a batch key run together, in the order of their first task.
        let mut groups: Vec<Vec<crate::source::Assignment>> = Vec::new();
        for a in tasks {
            match groups
                .iter_mut()
                .find(|g| crate::methods::batch_compatible(&g[0].task, &a.task))
            {
                Some(g) => g.push(a),
                None => groups.push(vec![a]),
            }
        }
        for group in groups {
            if shared.stopping() {
                for a in &group {
                    shared.source.finished(slot, a, TaskEnd::Abandoned);
                }
                continue;
            }
            if let Some(p) = &shared.progress {
                for _ in &group {
                    p.task_started();
                }
            }
            let outcomes = match group.as_slice() {
                [a] => vec![worker.run(&a.task, shared.cancel)],
                _ => {
                    let tasks: Vec<&synthsweep_sweep::Task> =
                        group.iter().map(|a| &a.task).collect();
                    worker.run_batch(&tasks, shared.cancel)
                }
            };
            for (a, outcome) in group.iter().zip(outcomes) {
                let end = match outcome {
                    Outcome::Finished(result) => {
                        let ok = result.task.status == TaskStatus::Done;
                        if let Some(p) = &shared.progress {
                            p.task_finished(ok);
                        }
                        // The writer is gone only after a commit error, which stops the run.
                        match (results.send(*result), ok) {
                            (Err(_), _) => TaskEnd::Abandoned,
                            (Ok(()), true) => TaskEnd::Done,
                            (Ok(()), false) => TaskEnd::Failed,
                        }
                    }
                    Outcome::Cancelled => {
                        if let Some(p) = &shared.progress {
                            p.task_abandoned();
                        }
                        shared.cancelled.fetch_add(1, Ordering::Relaxed);
                        TaskEnd::Abandoned
                    }
                };
                shared.source.finished(slot, a, end);
            }
        }
    }
}

/// The writer's side: results in, batches committed, checkpoints of committed tasks that
/// resumed from one deleted.
struct Committer<'a> {
    writer: Writer,
    /// Ids of tasks pushed to the writer and not committed yet, in order.
    uncommitted: Vec<String>,
    checkpoints: Option<&'a Checkpoints>,
}

impl Committer<'_> {
    /// Takes results until every slot has ended; flushes on age while idle.
    fn receive(
        &mut self,
        rx: &mpsc::Receiver<TaskResult>,
        shared: &Shared<'_>,
        report: &mut RunReport,
    ) -> Result<(), StoreError> {
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(result) => {
                    match result.task.status {
                        TaskStatus::Done => report.done += 1,
                        TaskStatus::Failed => report.failed += 1,
                    }
                    self.uncommitted.push(result.task.task_id.clone());
                    let flushed = self.writer.push(result)?;
                    self.after_flush(flushed.is_some());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let flushed = self.writer.tick()?;
                    self.after_flush(flushed.is_some());
                    if let Some(p) = &shared.progress {
                        p.tick();
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// After a flush committed every buffered result but the last `pending` ones.
    fn after_flush(&mut self, flushed: bool) {
        if !flushed {
            return;
        }
        let n = self.uncommitted.len().saturating_sub(self.writer.pending());
        let ids: Vec<String> = self.uncommitted.drain(..n).collect();
        if let Some(ck) = self.checkpoints {
            ck.committed(ids.iter().map(String::as_str));
        }
    }

    /// Commits what is left and closes the writer.
    fn finish(mut self) -> Result<WriterStats, StoreError> {
        let flushed = self.writer.flush()?;
        self.after_flush(flushed.is_some());
        self.writer.finish()
    }
}
