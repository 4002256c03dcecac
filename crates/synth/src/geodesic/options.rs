//! Geodesic's pixel-change stop rule; its constructor and `synthesize` arguments, defaults
//! and checks are `synthsweep_core::params`'s.
pub use synthsweep_core::params::geodesic_defaults as defaults;
pub use synthsweep_core::params::{GeodesicOptions, GeodesicSynthesizeOptions, InitialSequence};

/// plenoptic's pixel-change stop rule: more than `k` steps, and each of the last `k` moved
/// the sequence by less than `criterion` (compared in float32, as plenoptic compares tensors).
pub fn pixel_change_converged(pixel_change_norm: &[f64], criterion: f64, k: usize) -> bool {
    let n = pixel_change_norm.len();
    n > k
        && pixel_change_norm[n - k..]
            .iter()
            .all(|&v| (v as f32) < criterion as f32)
}
