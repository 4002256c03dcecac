//! Synthesis on any model or metric, at parity with plenoptic 1.1: autodiff helpers,
//! eigendistortions, MAD competition, metamers (plain, coarse-to-fine, simple) and geodesics.
pub mod autodiff;
pub mod eigendistortion;
pub mod error;
pub mod validate;

pub use eigendistortion::Eigendistortion;
pub use error::{Result, SynthError};
