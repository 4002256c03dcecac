//! Multi-process sweeps on timely dataflow: `synthsweep run SPEC --processes N --process I`
//! (or one task per process of a Slurm step) runs one sweep over several processes and
//! machines. This crate holds only what is particular to several processes: who takes part
//! ([`Cluster`], [`SlurmStep`]), the coordinator on process 0, the timely dataflow between
//! them, and the engine's task source that asks the coordinator. Running tasks, the writer,
//! checkpoints and preemption are the exec engine's, the same as in a local run.
//!
//! # How tasks are dispatched
//!
//! Every process plans the spec itself (planning is deterministic and fast) and connects to
//! the others with timely (one TCP connection per pair, [`Cluster`] says where). Process 0
//! is the coordinator: it prepares the output root (recovery, stale checkpoints), writes the
//! run record and broadcasts the run id; only then do the others start. Each process runs
//! the exec engine (one slot per device, models built once, one writer) with a remote
//! source: an idle slot sends one request to process 0, which answers with the next task
//! not committed yet (its position in the plan and its id, which the process checks
//! against its own plan) or "no more". A finished task is reported and the slot asks again,
//! so a process with fast tasks or fast devices simply asks more often: tasks of 10 and of
//! 1000 iterations balance. The requests and answers travel in a timely dataflow (input ->
//! exchange to process 0 -> coordinator -> exchange to the asking process); synthesis runs
//! on the engine's slot threads, never on the timely thread, so the coordinator keeps
//! answering while its own process computes.
//!
//! Each process commits its own results with its engine's writer (tag `p<I>`) under the
//! exactly-once protocol, so the dataset is the one a local run would write: same task
//! ids, same values on CPU.
//!
//! # When things go wrong
//!
//! - Ctrl-C on any process stops the run: every process abandons its in-flight tasks,
//!   commits its finished ones and exits with 130.
//! - A process killed (kill -9, a node lost): timely cannot go on without it, so the others
//!   exit at once with the transient status [`abort::EXIT_PEER_LOST`] (75, requeued by the
//!   Slurm script) after one clear line. Committed tasks stay;
//!   in-flight tasks and buffered results are lost; nothing is half visible. A re-run (any
//!   number of processes, or a local run) recovers the root and runs exactly the tasks not
//!   committed.
//! - Processes that planned different sweeps (other spec or images) stop the run with an
//!   error before any task runs.
//! - A storage failure or a lost writer lease on any process stops the run with that kind
//!   ([`protocol::StopKind`]), so every process exits with the same code: 74 (storage) or
//!   75 (lease lost to a stall), both transient.
pub mod abort;
pub mod cluster;
pub mod coordinator;
mod error;
pub mod protocol;
mod remote;
mod run;
pub mod slurm;

pub use cluster::Cluster;
pub use coordinator::Totals;
pub use error::{DistError, Result};
pub use run::{run, DistOptions, DistReport};
pub use slurm::SlurmStep;
pub use synthsweep_exec::DispatchStats;
