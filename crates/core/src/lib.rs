//! synthsweep's shared vocabulary, without libtorch: the synthesis kinds, MAD's direction,
//! the inputs ("roles") each method takes, each method's parameters as one typed value with
//! plenoptic's names, defaults and checks, image shapes, and the canonical JSON that task
//! identity is computed from.
//!
//! Everything above this crate uses these types: the sweep planner parses and checks a
//! task's parameters here ([`params::MethodParams::from_values`]), the executor hands the
//! same values to the synthesis, whose option structs are these.
//!
//! ```
//! use serde_json::json;
//! use synthsweep_core::{params::MethodParams, SynthKind};
//! let a = MethodParams::from_values(SynthKind::Metamer, [("store_progress", &json!(true))])?;
//! let b = MethodParams::from_values(SynthKind::Metamer, [("store_progress", &json!(1))])?;
//! assert_eq!(a.canonical_json(), b.canonical_json());
//! let e = MethodParams::from_values(SynthKind::Mad, [("initial_noise", &json!(-0.1))]).unwrap_err();
//! assert_eq!(e.to_string(), "initial_noise: must be non-negative (>= 0), got -0.1");
//! # Ok::<(), synthsweep_core::ParamError>(())
//! ```
pub mod canonical;
mod error;
mod image;
mod kind;
pub mod params;

pub use error::ParamError;
pub use image::ImageShape;
pub use kind::{MinMax, Role, SynthKind};
