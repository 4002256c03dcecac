//! Where the engine's worker slots get their tasks and where they report how each ended:
//! the [`TaskSource`] trait, and [`PlanSource`], the local one (the plan's uncommitted
//! tasks, in plan order). The multi-process source lives in `synthsweep-dist`: it asks the
//! coordinator on process 0 over timely.
use std::sync::Mutex;
use synthsweep_store::Ledger;
use synthsweep_sweep::Task;

/// A task handed to a worker slot, with the source's own number for it (the remote source:
/// the task's position in the plan), given back in [`TaskSource::finished`].
#[derive(Debug, Clone)]
pub struct Assignment {
    pub task: Task,
    pub ticket: u64,
}

/// How a task handed out by a source ended on its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TaskEnd {
    /// Finished with status `done`; its result went to the writer.
    Done,
    /// Finished with status `failed`; its result went to the writer.
    Failed,
    /// Given up without a result (the run is stopping, or a preemption checkpointed it);
    /// not committed: it runs again next time.
    Abandoned,
    /// Not run here: another writer on the root (another run, an array shard, a writer
    /// that died after committing it) committed it. Reported by
    /// [`ClaimingSource`](crate::claiming::ClaimingSource).
    CommittedElsewhere,
}

/// Where worker slots get tasks: a local plan iterator, or a remote coordinator. The engine
/// calls it from every slot thread at once.
///
/// A source decides what a slot runs next and may answer for several tasks at once (a
/// `max` above 1 is for a slot that runs compatible tasks together); it hears back how
/// each ended.
/// Claiming tasks on a shared root wraps any source: see
/// [`ClaimingSource`](crate::claiming::ClaimingSource).
pub trait TaskSource: Sync {
    /// Up to `max` (≥ 1) tasks for worker slot `slot`, blocking until there is an answer;
    /// empty when there is nothing more for this slot (or the run is stopping).
    fn next(&self, slot: usize, max: usize) -> Vec<Assignment>;

    /// How a task handed out by [`TaskSource::next`] ended. Called once per task, from the
    /// slot that ran it, after a finished task's result was handed to the writer.
    fn finished(&self, _slot: usize, _task: &Assignment, _end: TaskEnd) {}

    /// The engine stops taking tasks because its results cannot be committed (`why`: a
    /// storage failure, a lost lease); a source shared with other processes tells them at
    /// once, with the kind of failure, so that every process exits with the same code.
    fn abort(&self, _why: &synthsweep_store::StoreError) {}

    /// Tasks of this source that other writers committed and that were therefore never
    /// handed out (shown in the progress, which counts them towards its total).
    fn committed_elsewhere(&self) -> u64 {
        0
    }

    /// Whether a consumer should ask for no more than it runs at once: a source shared with
    /// other processes (the coordinator's) balances the load only while each process takes
    /// little ahead of its slots. Claim groups are then limited to a slot's batch.
    fn shared_with_other_processes(&self) -> bool {
        false
    }
}

/// The plan's tasks that are not committed yet, in plan order, handed out as slots ask.
/// A planning error ends the stream; [`PlanSource::error`] says what it was.
pub struct PlanSource<'p> {
    state: Mutex<PlanState<'p>>,
}

struct PlanState<'p> {
    iter: Box<dyn Iterator<Item = synthsweep_sweep::Result<Task>> + Send + 'p>,
    handed: u64,
    error: Option<String>,
}

impl<'p> PlanSource<'p> {
    /// The tasks of `tasks` (e.g. `plan.iter()` or `plan.shard(i, n)?`) that `ledger` does
    /// not list as committed.
    pub fn new(
        tasks: impl Iterator<Item = synthsweep_sweep::Result<Task>> + Send + 'p,
        ledger: &'p Ledger,
    ) -> Self {
        let pending = tasks.filter(move |t| !matches!(t, Ok(t) if ledger.is_committed(t.id())));
        PlanSource {
            state: Mutex::new(PlanState {
                iter: Box::new(pending),
                handed: 0,
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
    fn next(&self, _slot: usize, max: usize) -> Vec<Assignment> {
        let mut s = self.state.lock().expect("task source lock");
        let mut out = Vec::new();
        while out.len() < max.max(1) && s.error.is_none() {
            match s.iter.next() {
                Some(Ok(task)) => {
                    out.push(Assignment {
                        task,
                        ticket: s.handed,
                    });
                    s.handed += 1;
                }
                Some(Err(e)) => s.error = Some(e.to_string()),
                None => break,
            }
        }
        out
    }
}
