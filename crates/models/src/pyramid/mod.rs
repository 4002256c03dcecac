//! Multi-scale image decompositions: plenoptic's `SteerablePyramidFreq`.
mod coeffs;
mod masks;
mod recon;
pub mod steerable;

pub use coeffs::{PyrScale, PyramidCoeffs};
pub use steerable::{Height, SteerableConfig, SteerablePyramid, STEERABLE_PYRAMID_PARAMS};
