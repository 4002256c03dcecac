//! Synthesis on any model or metric, at parity with plenoptic 1.1: autodiff helpers,
//! eigendistortions, MAD competition, metamers (plain, coarse-to-fine, simple) and geodesics.
pub mod error;

pub use error::{Result, SynthError};
