//! Geodesic's constructor and `synthesize` arguments with plenoptic's defaults, and its
//! pixel-change stop rule.
use crate::optim::OptimizerConfig;
use crate::synthesis::StoreProgress;
use serde::{Deserialize, Serialize};

/// plenoptic's defaults for `Geodesic` and its `synthesize`.
pub mod defaults {
    pub const N_STEPS: usize = 10;
    pub const RANGE_PENALTY_LAMBDA: f64 = 0.1;
    pub const ALLOWED_RANGE: (f64, f64) = (0.0, 1.0);
    pub const MAX_ITER: usize = 1000;
    pub const STOP_ITERS_TO_CHECK: usize = 50;
    /// Adam's learning rate (amsgrad, as for every optimised synthesis), 10× below Metamer's.
    pub const LEARNING_RATE: f64 = 0.001;
}

/// The sequence the optimisation starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialSequence {
    /// The pixel fade from `image_a` to `image_b`.
    #[default]
    Straight,
    /// A Brownian bridge between them (one `randn` draw).
    Bridge,
}

/// Geodesic's constructor arguments, with plenoptic's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeodesicOptions {
    /// Steps between the anchors: the sequence has `n_steps + 1` frames, `n_steps − 1` of them
    /// optimised.
    pub n_steps: usize,
    pub initial_sequence: InitialSequence,
    pub range_penalty_lambda: f64,
    pub allowed_range: (f64, f64),
    /// `tch::manual_seed(seed)` right before the constructor's draws; `None` draws from the
    /// generator as it stands.
    pub seed: Option<i64>,
}

impl Default for GeodesicOptions {
    fn default() -> Self {
        GeodesicOptions {
            n_steps: defaults::N_STEPS,
            initial_sequence: InitialSequence::Straight,
            range_penalty_lambda: defaults::RANGE_PENALTY_LAMBDA,
            allowed_range: defaults::ALLOWED_RANGE,
            seed: None,
        }
    }
}

/// The arguments of `Geodesic.synthesize`, with plenoptic's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeodesicSynthesizeOptions {
    pub max_iter: usize,
    /// `None`: Adam(lr 0.001, amsgrad) on the first call, the existing optimizer afterwards.
    pub optimizer: Option<OptimizerConfig>,
    /// Every n-th iteration (at its start), record `step_energy` and `dev_from_line`.
    pub store_progress: StoreProgress,
    /// Stop once the last `stop_iters_to_check` pixel changes are all below this. `None`:
    /// `‖pixelfade‖ / 10⁴ · golden ratio`.
    pub stop_criterion: Option<f64>,
    pub stop_iters_to_check: usize,
}

impl Default for GeodesicSynthesizeOptions {
    fn default() -> Self {
        GeodesicSynthesizeOptions {
            max_iter: defaults::MAX_ITER,
            optimizer: None,
            store_progress: StoreProgress::default(),
            stop_criterion: None,
            stop_iters_to_check: defaults::STOP_ITERS_TO_CHECK,
        }
    }
}

/// plenoptic's pixel-change stop rule: more than `k` steps, and each of the last `k` moved
/// the sequence by less than `criterion` (compared in float32, as plenoptic compares tensors).
pub fn pixel_change_converged(pixel_change_norm: &[f64], criterion: f64, k: usize) -> bool {
    let n = pixel_change_norm.len();
    n > k
        && pixel_change_norm[n - k..]
            .iter()
            .all(|&v| (v as f32) < criterion as f32)
}
