//! Sweep specs for synthsweep: one TOML file describes a whole study (plenoptic's MAD
//! competition, eigendistortions, metamers, geodesics) as axes crossed and zipped,
//! exclusions and conditional values; this crate parses and checks it, expands it into
//! tasks by index arithmetic (streaming, nothing materialised), and gives every task a
//! stable id computed from what it computes.
//!
//! ```no_run
//! use synthsweep_sweep::{NoopResolver, SweepSpec};
//! let plan = SweepSpec::from_path("sweeps/quickstart.toml")?.plan(NoopResolver)?;
//! println!("{}", plan.summary());
//! for task in plan.shard(0, 4)? {
//!     let task = task?;
//!     println!("{} {}", task.short_id(), task.label());
//! }
//! # Ok::<(), synthsweep_sweep::SweepError>(())
//! ```
//!
//! The spec syntax is documented in `SPEC.md` beside this crate. This crate does not link
//! libtorch: method parameters are typed by `synthsweep_core::params`, and the caller
//! supplies a [`Resolver`] that fills in defaults of models and metrics and says which
//! image shapes they take. Planning checks every task before anything runs.
mod axes;
mod build;
mod check;
mod error;
mod expand;
mod images;
mod plan;
mod probe;
mod resolve;
mod rules;
mod source;
mod spec;
mod summary;
mod task;
mod values;

pub use error::{Location, Result, SweepError};
pub use expand::{Indices, ShardScheme};
pub use images::{ImageRef, IMAGE_EXTENSIONS};
pub use plan::{CheckScope, Plan, PlanOptions};
pub use resolve::{NoopResolver, Resolver};
pub use spec::{AxisInfo, SweepSpec};
pub use summary::{Exclusion, PlanSummary};
/// Canonical JSON and SHA-256, from `synthsweep_core`.
pub use synthsweep_core::canonical;
pub use synthsweep_core::params::MethodParams;
pub use synthsweep_core::{ImageShape, MinMax, Role, SynthKind};
pub use task::{Task, TaskImages, TASK_SCHEMA};
