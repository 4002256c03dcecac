//! Synthesis on any model or metric, at parity with plenoptic 1.1: autodiff helpers,
//! eigendistortions, MAD competition, metamers (plain, coarse-to-fine, simple) and geodesics.
pub mod ctf;
pub mod error;
pub mod lbfgs;
mod line_search;
pub mod mad;
pub mod metamer;
pub mod optim;
pub mod scheduler;
pub mod simple_metamer;
pub mod state;
pub mod synthesis;
mod validate;

pub use ctf::{CoarseToFine, CtfSynthesizeOptions, MetamerCtf};
pub use error::{Result, SynthError};
pub use mad::{MadCompetition, MadOptions, MinMax};
pub use metamer::{LossFunction, Metamer, MetamerOptions};
pub use optim::{Optimizer, OptimizerConfig};
pub use scheduler::SchedulerConfig;
pub use simple_metamer::SimpleMetamer;
pub use synthesis::{Callback, Outcome, Progress, StoreProgress, SynthesizeOptions};
