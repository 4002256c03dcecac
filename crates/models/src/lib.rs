//! synthsweep's numerical core: image I/O, filters, plenoptic's image models, pyramids and
//! metrics on libtorch, and the registry that builds them from JSON specs.
#![warn(missing_docs)]
pub mod device;
pub mod error;
pub mod filtering;
pub mod filters;
pub mod frontend;
pub mod image_io;
pub mod metrics;
pub mod model;
pub mod naive;
pub mod params;
mod per_channel;
pub mod portilla_simoncelli;
pub mod pyramid;
pub mod registry;
pub mod rng;
pub mod signal;
pub mod torchscript;
mod warn;

pub use error::{ModelError, Result};
pub use model::{Metric, Model};
pub use registry::{build_metric, build_model, resolve_spec};
