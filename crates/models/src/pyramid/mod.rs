//! Multi-scale image decompositions: plenoptic's `SteerablePyramidFreq`.
mod masks;
pub mod steerable;

pub use steerable::{
    Height, PyrScale, PyramidCoeffs, SteerableConfig, SteerablePyramid, STEERABLE_PYRAMID_PARAMS,
};
