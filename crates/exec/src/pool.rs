//! The local executor: worker threads (one per device slot) pull tasks one at a time from a
//! shared source, so long and short tasks balance; finished results go through a channel
//! to one writer, which batches and commits them. The source and the sink are traits, so
//! a multi-process layer can feed the same workers with tasks from elsewhere.
use crate::checkpoint::{preempted, Checkpoints};
use crate::progress::Progress;
use crate::worker::{Outcome, Worker};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;
use synthsweep_store::{BatchReport, Ledger, Store, TaskResult, TaskStatus, WriterOptions};
use synthsweep_sweep::Task;
use tch::Device;

/// Where workers get their next task. `None` = no more work for this worker.
pub trait TaskSource: Sync {
    fn next_task(&self) -> Option<Task>;
}

/// The plan's tasks that are not committed yet, in plan order, handed out one at a time.
/// A planning error ends the stream; [`PlanSource::error`] says what it was.
pub struct PlanSource<'p> {
    state: Mutex<SourceState<'p>>,
}

struct SourceState<'p> {
    iter: Box<dyn Iterator<Item = synthsweep_sweep::Result<Task>> + Send + 'p>,
    error: Option<String>,
}

impl<'p> PlanSource<'p> {
    /// The tasks of `tasks` (e.g. `plan.iter()` or `plan.shard(i, n)?`) that `ledger` does
    /// not list as committed.
    pub fn new(
        tasks: impl Iterator<Item = synthsweep_sweep::Result<Task>> + Send + 'p,
        ledger: &'p Ledger,
    ) -> Self {
        let iter = tasks;
        let pending = iter.filter(move |t| !matches!(t, Ok(t) if ledger.is_committed(t.id())));
        PlanSource {
            state: Mutex::new(SourceState {
                iter: Box::new(pending),
                error: None,
            }),
        }
    }

    /// The planning error that ended the stream early, if any.
    pub fn error(&self) -> Option<String> {
        self.state.lock().expect("task source lock").error.clone()
    }
}

impl TaskSource for PlanSource<'_> {
    fn next_task(&self) -> Option<Task> {
        let mut s = self.state.lock().expect("task source lock");
        if s.error.is_some() {
            return None;
        }
        match s.iter.next()? {
            Ok(t) => Some(t),
            Err(e) => {
                s.error = Some(e.to_string());
                None
            }
        }
    }
}

/// How to run locally.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// One worker thread per entry.
    pub devices: Vec<Device>,
    /// libtorch intra-op threads (process-wide).
    pub intra_op_threads: usize,
    pub writer: WriterOptions,
    /// Tasks to run in this invocation (for the progress bar), if known.
    pub expected: u64,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    pub done: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Results committed by this run's writer.
    pub committed: u64,
    pub interrupted: bool,
    /// Stopped by SIGTERM/SIGUSR1 (see [`crate::checkpoint`]): exit with `EXIT_PREEMPTED`.
    pub preempted: bool,
    /// In-flight tasks saved as checkpoints when the run was preempted.
    pub checkpointed: u64,
}

/// After a flush committed a batch (all buffered results but the last `pending`): deletes
/// the checkpoints of the tasks it committed.
fn after_flush(
    flushed: Option<BatchReport>,
    uncommitted: &mut Vec<String>,
    pending: usize,
    checkpoints: Option<&Checkpoints>,
) {
    if flushed.is_some() {
        let n = uncommitted.len().saturating_sub(pending);
        let ids: Vec<String> = uncommitted.drain(..n).collect();
        if let Some(ck) = checkpoints {
            ck.committed(ids.iter().map(String::as_str));
        }
    }
}

/// Runs every task `source` hands out on the given devices and commits results to `store`.
/// Stops early when `cancel` is set: finished tasks are committed, in-flight ones abandoned,
/// or saved as checkpoints (`Checkpoints::for_root`) when a preemption signal set it. A task
/// with a checkpoint resumes from it; the checkpoint is deleted once the task is committed.
pub fn run_workers(
    source: &dyn TaskSource,
    store: &Store,
    ledger: &Ledger,
    opts: &LocalOptions,
    cancel: &AtomicBool,
) -> Result<RunReport, synthsweep_store::StoreError> {
    tch::set_num_threads(opts.intra_op_threads.max(1) as i32);
    let progress = Progress::new(opts.expected);
    let cancelled = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel::<TaskResult>();
    let mut writer = store.writer(opts.writer.clone(), ledger)?;
    let mut report = RunReport::default();
    let checkpoints = Checkpoints::for_root(store.root());
    if let Some(ck) = &checkpoints {
        let left = ck.prune(ledger);
        if left > 0 {
            tracing::info!(
                "{left} checkpoint(s) in {}: those tasks resume where they stopped",
                ck.dir().display()
            );
        }
    }
    // Task ids pushed to the writer and not yet committed, in order.
    let mut uncommitted: Vec<String> = Vec::new();
    let ck = checkpoints.as_ref();
    // Set when committing fails: the workers take no new task (their results could not be
    // committed), and the error ends the run once the in-flight tasks are done.
    let store_failed = AtomicBool::new(false);
    std::thread::scope(|scope| -> Result<(), synthsweep_store::StoreError> {
        for (i, &device) in opts.devices.iter().enumerate() {
            let tx = tx.clone();
            let (progress, cancelled, store_failed) = (&progress, &cancelled, &store_failed);
            let tag = format!("{}-w{i}", opts.writer.writer_tag);
            let checkpoints = checkpoints.clone();
            scope.spawn(move || {
                let mut worker = Worker::new(device, tag);
                worker.set_checkpoints(checkpoints);
                while !cancel.load(Ordering::Relaxed) && !store_failed.load(Ordering::Relaxed) {
                    let Some(task) = source.next_task() else {
                        break;
                    };
                    progress.task_started();
                    match worker.run(&task, cancel) {
                        Outcome::Finished(result) => {
                            progress.task_finished(result.task.status == TaskStatus::Done);
                            if tx.send(*result).is_err() {
                                break;
                            }
                        }
                        Outcome::Cancelled => {
                            progress.task_abandoned();
                            cancelled.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        drop(tx);
        let committed = (|| loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(result) => {
                    match result.task.status {
                        TaskStatus::Done => report.done += 1,
                        TaskStatus::Failed => report.failed += 1,
                    }
                    uncommitted.push(result.task.task_id.clone());
                    let flushed = writer.push(result)?;
                    after_flush(flushed, &mut uncommitted, writer.pending(), ck);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let flushed = writer.tick()?;
                    after_flush(flushed, &mut uncommitted, writer.pending(), ck);
                    progress.tick();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        })();
        if committed.is_err() {
            store_failed.store(true, Ordering::Relaxed);
        }
        committed
    })?;
    let flushed = writer.flush()?;
    after_flush(flushed, &mut uncommitted, writer.pending(), ck);
    let stats = writer.finish()?;
    progress.finish();
    report.committed = stats.tasks as u64;
    report.cancelled = cancelled.load(Ordering::Relaxed);
    report.interrupted = cancel.load(Ordering::Relaxed);
    report.preempted = report.interrupted && preempted();
    report.checkpointed = checkpoints.as_ref().map_or(0, |c| c.saved());
    Ok(report)
}
