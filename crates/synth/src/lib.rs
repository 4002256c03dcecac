//! Synthesis on any model or metric, at parity with plenoptic 1.1: autodiff helpers,
//! eigendistortions, MAD competition, metamers (plain, coarse-to-fine, simple) and geodesics.
//!
//! Every optimised synthesis is driven the same way: build it from an image, a borrowed
//! model or metrics and an options struct (plenoptic's constructor arguments and defaults,
//! deserializable from a sweep spec), call `synthesize` (again to continue), read the
//! records, `save`/`load` to stop and resume bit for bit.
//!
//! ```no_run
//! # fn main() -> synthsweep_synth::Result<()> {
//! use std::ops::ControlFlow;
//! use synthsweep_synth::{Metamer, MetamerOptions, SynthesizeOptions};
//! let model = synthsweep_models::build_model(&serde_json::json!({"name": "gaussian", "kernel_size": 5}))?;
//! let image = tch::Tensor::rand([1, 1, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
//! let options: MetamerOptions = serde_json::from_str(r#"{"range_penalty_lambda": 0.1, "seed": 0}"#).unwrap();
//! let mut metamer = Metamer::new(&image, model.as_ref(), options)?;
//! let run: SynthesizeOptions = serde_json::from_str(r#"{"max_iter": 50, "store_progress": 10}"#).unwrap();
//! metamer.synthesize_with(&run, &mut |p| {
//!     println!("{} {:.4e}", p.iteration, p.loss);
//!     ControlFlow::Continue(())
//! })?;
//! metamer.save("metamer.safetensors")?;
//! println!("{:?}", metamer.losses());
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
pub mod autodiff;
pub mod batch;
pub mod ctf;
pub mod eigendistortion;
pub mod error;
pub mod geodesic;
pub mod host;
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

pub use batch::{synthesize_mads, synthesize_metamers, BatchCallback};
pub use ctf::{CoarseToFine, CtfSynthesizeOptions, MetamerCtf};
pub use eigendistortion::Eigendistortion;
pub use error::{Result, SynthError};
pub use geodesic::{Geodesic, GeodesicOptions, GeodesicSynthesizeOptions, InitialSequence};
pub use host::{host_reads, record_chunk, set_record_chunk};
pub use mad::{MadCompetition, MadOptions, MinMax};
pub use metamer::{LossFunction, Metamer, MetamerOptions};
pub use optim::{Optimizer, OptimizerConfig};
pub use scheduler::SchedulerConfig;
pub use simple_metamer::SimpleMetamer;
pub use synthesis::{Callback, Outcome, Progress, StoreProgress, SynthesizeOptions};
