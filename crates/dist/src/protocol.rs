//! The messages of a multi-process run. Every process sends [`ToCoordinator`] messages to
//! process 0; the coordinator answers with [`ToProcess`] messages routed to one process.
//! Tasks travel as their index in the plan (every process plans the same spec) together
//! with their id, which the receiving process checks against its own plan.
use serde::{Deserialize, Serialize};

/// What process 0 tells every process before any task is handed out: the run's identity
/// and what it planned. Sent only once process 0 has recovered the output root, so a
/// process that has it may start writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub run_id: String,
    /// [`crate::fingerprint`] of process 0's plan.
    pub fingerprint: String,
    /// Tasks not committed yet, to run in this run.
    pub pending: u64,
}

/// How a handed-out task ended on its process: the engine's own outcome type.
pub use synthsweep_exec::TaskEnd;

/// Why the run stops early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopReason {
    /// The process where it happened.
    pub process: u32,
    /// What kind of stop: every process of the run exits with its code.
    pub kind: StopKind,
    pub message: String,
}

impl StopReason {
    /// Whether Ctrl-C (or SIGTERM/SIGUSR1) stopped the run rather than an error.
    pub fn interrupted(&self) -> bool {
        self.kind == StopKind::Interrupted
    }
}

/// The kind of an early stop, which decides the exit code of *every* process of the run
/// (the binary's codes): a storage failure or a lost lease on one process is transient for
/// the whole run, so the Slurm script requeues whichever process it looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopKind {
    /// Ctrl-C on some process (exit 130; 75 on a process that was itself preempted by
    /// SIGTERM/SIGUSR1).
    Interrupted,
    /// Bad input found during the run: processes that planned different sweeps, a
    /// planning error (exit 2).
    Failed,
    /// The output root's storage failed on some process: an outage, a full disk, a lost
    /// permission, or a writer lease lost because its renewals failed (exit 74).
    Storage,
    /// A process lost its writer lease to a stall, so other writers may have taken its
    /// tasks over (exit 75).
    LeaseLost,
}

impl StopKind {
    /// The kind of a storage error on some process.
    pub fn of_store(e: &synthsweep_store::StoreError) -> StopKind {
        if e.is_storage() {
            StopKind::Storage
        } else if e.is_lease_lost() {
            StopKind::LeaseLost
        } else {
            StopKind::Failed
        }
    }
}

/// From any process to the coordinator (process 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToCoordinator {
    /// Process 0, once, after preparing the output root: broadcast this to everyone.
    Start(Hello),
    /// `process` got the hello, planned the same sweep and is ready.
    Joined { process: u32 },
    /// An idle worker slot asks for up to `max` (≥ 1) tasks (one request per idle slot;
    /// `max` is the slot's `--batch`).
    Want { process: u32, slot: u32, max: u32 },
    /// A task handed to `process` ended.
    Finished {
        process: u32,
        index: u64,
        end: TaskEnd,
    },
    /// Stop the whole run.
    Stop(StopReason),
}

/// From the coordinator to one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToProcess {
    Hello {
        process: u32,
        hello: Hello,
    },
    /// Every process has joined: start asking for tasks.
    Go {
        process: u32,
    },
    /// Run the task at plan position `index`, whose id is `task_id`; `more`: another task
    /// for the same request follows.
    Task {
        process: u32,
        slot: u32,
        index: u64,
        task_id: String,
        more: bool,
    },
    /// Nothing left for this slot: it may exit.
    NoMore {
        process: u32,
        slot: u32,
    },
    /// Abandon in-flight tasks, commit finished ones, and end.
    Stop {
        process: u32,
        reason: StopReason,
    },
}

impl ToProcess {
    /// The process this message goes to.
    pub fn process(&self) -> u32 {
        match self {
            ToProcess::Hello { process, .. }
            | ToProcess::Go { process }
            | ToProcess::Task { process, .. }
            | ToProcess::NoMore { process, .. }
            | ToProcess::Stop { process, .. } => *process,
        }
    }
}
