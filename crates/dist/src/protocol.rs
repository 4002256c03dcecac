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
    /// Ctrl-C (exit code 130 everywhere) rather than an error (exit code 2).
    pub interrupted: bool,
    pub message: String,
}

/// From any process to the coordinator (process 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToCoordinator {
    /// Process 0, once, after preparing the output root: broadcast this to everyone.
    Start(Hello),
    /// `process` got the hello, planned the same sweep and is ready.
    Joined { process: u32 },
    /// An idle worker slot asks for a task (one request per idle slot).
    Want { process: u32, slot: u32 },
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
    /// Run the task at plan position `index`, whose id is `task_id`.
    Task {
        process: u32,
        slot: u32,
        index: u64,
        task_id: String,
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
