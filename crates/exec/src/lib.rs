//! Running sweep tasks in one process: the per-method runners, workers that build each
//! model and metric once, and the engine that feeds them from a task source, commits their
//! results, checkpoints them on preemption and shows progress. A local run and one process
//! of a multi-process run use the same engine with a different [`TaskSource`].
pub mod checkpoint;
pub mod claiming;
pub mod engine;
mod error;
pub mod methods;
pub mod params;
pub mod progress;
pub mod records;
pub mod source;
pub mod worker;

pub use checkpoint::{install_preemption_handlers, preempted, Checkpoints, EXIT_PREEMPTED};
pub use claiming::ClaimingSource;
pub use engine::{prepare_root, DispatchStats, EngineOptions, RunReport};
pub use error::ExecError;
pub use params::TaskResolver;
pub use source::{Assignment, PlanSource, TaskEnd, TaskSource};
pub use worker::{Outcome, Worker};
