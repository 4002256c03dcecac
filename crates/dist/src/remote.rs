//! The engine's task source in a multi-process run: an idle slot's request goes to the
//! timely thread (and on to the coordinator on process 0), the answer comes back as a plan
//! position and a task id, which this process checks against its own plan; how each task
//! ended goes back the same way. Synthesis, the writer and checkpoints are the exec
//! engine's, exactly as in a local run.
use crate::protocol::{StopKind, StopReason};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::Thread;
use std::time::Duration;
use synthsweep_exec::{Assignment, TaskEnd, TaskSource};
use synthsweep_sweep::Plan;

/// From the source (on a slot thread) to the timely thread.
#[derive(Debug)]
pub(crate) enum Event {
    /// Slot `0` is idle and wants up to `1` tasks.
    Want(u32, u32),
    /// The task at this plan position ended.
    Finished(u64, TaskEnd),
    /// Stop the whole run (a task that does not match the coordinator's plan, a commit
    /// that failed).
    Stop(StopReason),
}

/// From the timely thread to a slot waiting in [`RemoteSource::next`].
#[derive(Debug)]
pub(crate) enum Reply {
    /// A task's plan position and id; whether another follows for the same request.
    Task(u64, String, bool),
    NoMore,
}

/// Tasks handed out by the coordinator on process 0.
pub(crate) struct RemoteSource<'a> {
    process: u32,
    plan: &'a Plan,
    events: Sender<Event>,
    /// One answer channel per slot (a slot has at most one request out).
    replies: Vec<Mutex<Receiver<Reply>>>,
    cancel: &'a AtomicBool,
    /// The timely thread, woken when there is an event for it.
    wake: Thread,
    /// Set when the coordinator handed out a task this process planned differently.
    mismatch: Mutex<Option<String>>,
}

impl<'a> RemoteSource<'a> {
    /// A source for `slots` slots, and the senders the timely thread answers each slot on.
    pub fn new(
        process: u32,
        plan: &'a Plan,
        slots: usize,
        events: Sender<Event>,
        cancel: &'a AtomicBool,
        wake: Thread,
    ) -> (Self, Vec<Sender<Reply>>) {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..slots).map(|_| mpsc::channel()).unzip();
        let source = RemoteSource {
            process,
            plan,
            events,
            replies: rx.into_iter().map(Mutex::new).collect(),
            cancel,
            wake,
            mismatch: Mutex::new(None),
        };
        (source, tx)
    }

    fn send(&self, e: Event) {
        let _ = self.events.send(e);
        self.wake.unpark();
    }

    /// Waits for the answer to slot `slot`'s request; `None` when the run is stopping.
    fn answer(&self, slot: usize) -> Option<Reply> {
        let replies = self.replies[slot].lock().expect("reply channel");
        loop {
            match replies.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => return Some(r),
                Err(RecvTimeoutError::Timeout) if !self.cancel.load(Ordering::Relaxed) => {}
                Err(_) => return None,
            }
        }
    }

    /// Why this process refused a task (it planned another sweep), if it did.
    pub fn mismatch(&self) -> Option<String> {
        self.mismatch.lock().expect("mismatch").clone()
    }
}

impl TaskSource for RemoteSource<'_> {
    fn shared_with_other_processes(&self) -> bool {
        true
    }

    /// Up to `max` tasks per request: the coordinator answers with that many or fewer (the
    /// last marked as such), or with none. Every task is checked against this process's
    /// plan; when one differs, the run stops and every task of the answer is given back.
    fn next(&self, slot: usize, max: usize) -> Vec<Assignment> {
        self.send(Event::Want(slot as u32, max.max(1) as u32));
        let mut answer = Vec::new();
        // A stopping run answers nothing more: what was handed out stays uncommitted and
        // runs next time.
        while let Some(Reply::Task(index, task_id, more)) = self.answer(slot) {
            answer.push((index, task_id));
            if !more {
                break;
            }
        }
        let mut out = Vec::with_capacity(answer.len());
        for (index, task_id) in &answer {
            match self.plan.task_by_index(*index) {
                Ok(Some(task)) if task.id() == task_id => out.push(Assignment {
                    task,
                    ticket: *index,
                }),
                other => {
                    let here = match other {
                        Ok(Some(t)) => format!("task {}", t.short_id()),
                        Ok(None) => "no task (excluded)".to_string(),
                        Err(e) => format!("an error ({e})"),
                    };
                    let message = format!(
                        "process {} planned {here} at plan position {index} where process 0 has task {}: \
                         run every process with the same spec and the same images",
                        self.process,
                        &task_id[..12.min(task_id.len())]
                    );
                    *self.mismatch.lock().expect("mismatch") = Some(message.clone());
                    self.send(Event::Stop(StopReason {
                        process: self.process,
                        kind: StopKind::Failed,
                        message,
                    }));
                    for (index, _) in &answer {
                        self.send(Event::Finished(*index, TaskEnd::Abandoned));
                    }
                    return Vec::new();
                }
            }
        }
        out
    }

    fn finished(&self, _slot: usize, task: &Assignment, end: TaskEnd) {
        self.send(Event::Finished(task.ticket, end));
    }

    fn abort(&self, why: &synthsweep_store::StoreError) {
        self.send(Event::Stop(StopReason {
            process: self.process,
            kind: StopKind::of_store(why),
            message: format!("process {}: cannot commit results: {why}", self.process),
        }));
    }
}
