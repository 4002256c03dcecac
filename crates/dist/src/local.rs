//! What runs inside each process besides timely: one thread per device slot running tasks
//! on an exec [`Worker`] (so synthesis never blocks the dataflow), and one writer thread
//! committing this process's results with the store's exactly-once protocol. They talk to
//! the timely thread through channels and wake it with `unpark`.
use crate::protocol::{StopReason, TaskEnd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::Thread;
use std::time::{Duration, Instant};
use synthsweep_exec::{Outcome, Worker};
use synthsweep_store::{
    Ledger, Store, StoreError, TaskResult, TaskStatus, WriterOptions, WriterStats,
};
use synthsweep_sweep::Plan;

/// From a slot to the timely thread.
#[derive(Debug)]
pub(crate) enum Event {
    /// Slot `0` is idle and wants a task.
    Want(u32),
    /// The task at this plan position ended.
    Finished(u64, TaskEnd),
    /// Stop the run (a task that does not match the coordinator's plan).
    Stop(StopReason),
}

/// From the timely thread to a slot.
#[derive(Debug)]
pub(crate) enum Reply {
    Task(u64, String),
    NoMore,
}

/// How long idle slots waited between asking for a task and getting one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DispatchStats {
    pub tasks: u64,
    pub total: Duration,
    pub max: Duration,
}

impl DispatchStats {
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

/// What one slot thread needs.
pub(crate) struct SlotCtx<'a> {
    pub process: u32,
    pub slot: u32,
    pub plan: &'a Plan,
    pub events: Sender<Event>,
    pub replies: Receiver<Reply>,
    pub results: Sender<TaskResult>,
    pub cancel: &'a AtomicBool,
    pub wake: Thread,
    pub stats: &'a Mutex<DispatchStats>,
}

impl SlotCtx<'_> {
    fn send(&self, e: Event) {
        let _ = self.events.send(e);
        self.wake.unpark();
    }

    /// Waits for the answer to a request; `None` when the run is stopping.
    fn answer(&self) -> Option<Reply> {
        loop {
            match self.replies.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => return Some(r),
                Err(RecvTimeoutError::Timeout) if !self.cancel.load(Ordering::Relaxed) => {}
                Err(_) => return None,
            }
        }
    }
}

/// A slot: ask for a task, run it, hand the result to the writer, report, ask again.
/// Ends on `NoMore` or when the run is stopping (in-flight task abandoned).
pub(crate) fn slot_loop(cx: SlotCtx<'_>, mut worker: Worker) {
    while !cx.cancel.load(Ordering::Relaxed) {
        cx.send(Event::Want(cx.slot));
        let asked = Instant::now();
        let Some(Reply::Task(index, task_id)) = cx.answer() else {
            break;
        };
        cx.stats.lock().unwrap().record(asked.elapsed());
        let task = match cx.plan.task_by_index(index) {
            Ok(Some(t)) if t.id() == task_id => t,
            other => {
                let here = match other {
                    Ok(Some(t)) => format!("task {}", t.short_id()),
                    Ok(None) => "no task (excluded)".to_string(),
                    Err(e) => format!("an error ({e})"),
                };
                cx.send(Event::Stop(StopReason {
                    process: cx.process,
                    interrupted: false,
                    message: format!(
                        "process {} planned {here} at plan position {index} where process 0 has task {}: \
                         run every process with the same spec and the same images",
                        cx.process,
                        &task_id[..12.min(task_id.len())]
                    ),
                }));
                cx.send(Event::Finished(index, TaskEnd::Abandoned));
                break;
            }
        };
        let end = match worker.run(&task, cx.cancel) {
            Outcome::Finished(result) => {
                let end = match result.task.status {
                    TaskStatus::Done => TaskEnd::Done,
                    TaskStatus::Failed => TaskEnd::Failed,
                };
                // The writer is gone only after a commit error, which stops the run.
                if cx.results.send(*result).is_ok() {
                    end
                } else {
                    TaskEnd::Abandoned
                }
            }
            Outcome::Cancelled => TaskEnd::Abandoned,
        };
        cx.send(Event::Finished(index, end));
    }
    cx.wake.unpark();
}

/// This process's writer: buffers results and commits them in batches (data files first,
/// the tasks file last), flushing on age when idle. Returns the totals, or the first error.
pub(crate) fn write_loop(
    store: &Store,
    opts: WriterOptions,
    ledger: &Ledger,
    results: Receiver<TaskResult>,
    wake: Thread,
) -> Result<WriterStats, StoreError> {
    let out = (|| {
        let mut writer = store.writer(opts, ledger)?;
        loop {
            match results.recv_timeout(Duration::from_millis(500)) {
                Ok(r) => {
                    writer.push(r)?;
                }
                Err(RecvTimeoutError::Timeout) => {
                    writer.tick()?;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        writer.finish()
    })();
    wake.unpark();
    out
}
