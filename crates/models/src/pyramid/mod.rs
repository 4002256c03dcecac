//! Multi-scale image decompositions: plenoptic's `SteerablePyramidFreq` and `LaplacianPyramid`.
mod coeffs;
pub mod laplacian;
mod masks;
mod recon;
pub mod steerable;

pub use coeffs::{PyrScale, PyramidCoeffs};
pub use steerable::{Height, SteerableConfig, SteerablePyramid, STEERABLE_PYRAMID_PARAMS};
