//! Running sweep tasks: the per-method runners, workers that build each model and metric
//! once, the local pool that feeds them dynamically and commits their results, and progress.
pub mod checkpoint;
pub mod methods;
pub mod params;
pub mod pool;
pub mod progress;
pub mod records;
pub mod worker;

pub use checkpoint::{install_preemption_handlers, preempted, Checkpoints, EXIT_PREEMPTED};
pub use params::TaskResolver;
pub use pool::{run_workers, LocalOptions, PlanSource, RunReport, TaskSource};
pub use worker::{Outcome, Worker};
