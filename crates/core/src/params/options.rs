//! The constructor arguments of each synthesis method (plenoptic's `MADCompetition(...)`,
//! `Metamer(...)`, `MetamerCTF(...)`, `Geodesic(...)`), Geodesic's and Eigendistortion's
//! `synthesize()` arguments, with plenoptic's names, defaults and checks.
use super::optim::OptimizerConfig;
use super::synthesize::StoreProgress;
use crate::error::{at_least_one, increasing_range, non_negative, ParamError};
use serde::{Deserialize, Serialize};

/// MADCompetition's constructor arguments with plenoptic's defaults (`minmax` has no
/// default and is passed separately).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MadOptions {
    /// Standard deviation of the Gaussian noise added to the image to start, >= 0
    /// (pixel units, images in [0, 1]).
    pub initial_noise: f64,
    /// Weight of the reference metric's deviation, > 0. `None`: a power of ten balancing the
    /// two metrics at the start (plenoptic's choice; needs `initial_noise > 0`).
    pub metric_tradeoff_lambda: Option<f64>,
    /// Weight of the penalty on pixels outside `allowed_range`, >= 0.
    pub range_penalty_lambda: f64,
    /// Inclusive pixel range `[lo, hi]`, `lo < hi`; the image must lie inside it.
    pub allowed_range: (f64, f64),
    /// Not a parameter: the task's seed, set by whoever runs the synthesis.
    /// `tch::manual_seed(seed)` right before the constructor's draws. Never read from a
    /// spec and never part of a task's canonical description.
    #[serde(skip)]
    pub seed: Option<i64>,
}

impl Default for MadOptions {
    fn default() -> Self {
        MadOptions {
            initial_noise: 0.1,
            metric_tradeoff_lambda: None,
            range_penalty_lambda: 0.1,
            allowed_range: (0.0, 1.0),
            seed: None,
        }
    }
}

impl MadOptions {
    /// Every field's range, and the rule relating two: the automatic
    /// `metric_tradeoff_lambda` divides the two metrics at the initial image, which is the
    /// image itself when `initial_noise = 0`, so that combination needs an explicit λ.
    ///
    /// # Errors
    /// The first field or rule broken.
    pub fn validate(&self) -> Result<(), ParamError> {
        non_negative("range_penalty_lambda", self.range_penalty_lambda)?;
        increasing_range("allowed_range", self.allowed_range)?;
        non_negative("initial_noise", self.initial_noise)?;
        match self.metric_tradeoff_lambda {
            Some(l) if !(l > 0.0 && l.is_finite()) => Err(ParamError::new(
                "metric_tradeoff_lambda",
                format!(
                    "must be a finite number > 0 (the weight that holds the reference metric), got {l}"
                ),
            )),
            None if self.initial_noise == 0.0 => Err(ParamError::relating(
                "metric_tradeoff_lambda",
                &["initial_noise"],
                "cannot be chosen automatically when initial_noise = 0: plenoptic's choice \
                 divides the two metrics at the initial image, which is then the image itself \
                 (0 / 0); give metric_tradeoff_lambda or use initial_noise > 0",
            )),
            _ => Ok(()),
        }
    }
}

/// The distance between two representations (plenoptic's `loss_function`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossFunction {
    /// `mean((a − b)²)` over all elements (plenoptic's `mse`).
    #[default]
    Mse,
    /// `‖b − a‖₂` (plenoptic's `l2_norm`).
    #[serde(alias = "l2")]
    L2Norm,
    /// `‖b − a‖² / ‖b‖²`, with `b` the target (plenoptic's `relative_MSE`).
    #[serde(alias = "relative_mse")]
    RelativeSse,
}

/// Metamer's and MetamerCTF's constructor arguments with plenoptic's defaults (the initial
/// image is uniform noise in `allowed_range`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetamerOptions {
    /// How representations are compared.
    pub loss_function: LossFunction,
    /// Weight of the penalty on pixels outside `allowed_range`, >= 0.
    pub range_penalty_lambda: f64,
    /// Inclusive pixel range `[lo, hi]`, `lo < hi`; the image must lie inside it.
    pub allowed_range: (f64, f64),
    /// Not a parameter: the task's seed (see [`MadOptions::seed`]).
    #[serde(skip)]
    pub seed: Option<i64>,
}

impl Default for MetamerOptions {
    fn default() -> Self {
        MetamerOptions {
            loss_function: LossFunction::Mse,
            range_penalty_lambda: 0.1,
            allowed_range: (0.0, 1.0),
            seed: None,
        }
    }
}

impl MetamerOptions {
    /// # Errors
    /// A negative `range_penalty_lambda` or an `allowed_range` that is not increasing.
    pub fn validate(&self) -> Result<(), ParamError> {
        non_negative("range_penalty_lambda", self.range_penalty_lambda)?;
        increasing_range("allowed_range", self.allowed_range)
    }
}

/// Whether finished scales stay in the loss (`together`) or not (`separate`): MetamerCTF's
/// `coarse_to_fine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoarseToFine {
    /// Start with the coarsest scale, then add each finer one.
    #[default]
    Together,
    /// One scale at a time, then all together.
    Separate,
}

/// plenoptic's defaults for `Geodesic` and its `synthesize`.
pub mod geodesic_defaults {
    /// Steps between the anchors.
    pub const N_STEPS: usize = 10;
    /// Weight of the range penalty.
    pub const RANGE_PENALTY_LAMBDA: f64 = 0.1;
    /// Inclusive pixel range.
    pub const ALLOWED_RANGE: (f64, f64) = (0.0, 1.0);
    /// Iterations at most.
    pub const MAX_ITER: usize = 1000;
    /// Window of the pixel-change stop rule.
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
    /// Steps between the anchors, >= 2: the sequence has `n_steps + 1` frames, `n_steps − 1`
    /// of them optimised.
    pub n_steps: usize,
    /// Where the optimisation starts.
    pub initial_sequence: InitialSequence,
    /// Weight of the penalty on pixels outside `allowed_range`, >= 0.
    pub range_penalty_lambda: f64,
    /// Inclusive pixel range `[lo, hi]`, `lo < hi`; both images must lie inside it.
    pub allowed_range: (f64, f64),
    /// Not a parameter: the task's seed (see [`MadOptions::seed`]).
    #[serde(skip)]
    pub seed: Option<i64>,
}

impl Default for GeodesicOptions {
    fn default() -> Self {
        GeodesicOptions {
            n_steps: geodesic_defaults::N_STEPS,
            initial_sequence: InitialSequence::Straight,
            range_penalty_lambda: geodesic_defaults::RANGE_PENALTY_LAMBDA,
            allowed_range: geodesic_defaults::ALLOWED_RANGE,
            seed: None,
        }
    }
}

impl GeodesicOptions {
    /// # Errors
    /// `n_steps < 2` (no frame to optimise), a negative `range_penalty_lambda`, or an
    /// `allowed_range` that is not increasing.
    pub fn validate(&self) -> Result<(), ParamError> {
        non_negative("range_penalty_lambda", self.range_penalty_lambda)?;
        increasing_range("allowed_range", self.allowed_range)?;
        if self.n_steps < 2 {
            return Err(ParamError::new(
                "n_steps",
                format!(
                    "must be at least 2 (n_steps − 1 frames are optimised), got {}",
                    self.n_steps
                ),
            ));
        }
        Ok(())
    }
}

/// The arguments of `Geodesic.synthesize`, with plenoptic's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeodesicSynthesizeOptions {
    /// Iterations to run at most.
    pub max_iter: usize,
    /// `None`: Adam(lr 0.001, amsgrad) on the first call, the existing optimizer afterwards.
    pub optimizer: Option<OptimizerConfig>,
    /// Every n-th iteration (at its start), record `step_energy` and `dev_from_line`.
    pub store_progress: StoreProgress,
    /// Stop once the last `stop_iters_to_check` pixel changes are all below this, >= 0.
    /// `None`: `‖pixelfade‖ / 10⁴ · golden ratio`.
    pub stop_criterion: Option<f64>,
    /// The window of the stop rule, >= 1.
    pub stop_iters_to_check: usize,
}

impl Default for GeodesicSynthesizeOptions {
    fn default() -> Self {
        GeodesicSynthesizeOptions {
            max_iter: geodesic_defaults::MAX_ITER,
            optimizer: None,
            store_progress: StoreProgress::default(),
            stop_criterion: None,
            stop_iters_to_check: geodesic_defaults::STOP_ITERS_TO_CHECK,
        }
    }
}

impl GeodesicSynthesizeOptions {
    /// # Errors
    /// The optimizer's checks, a negative `stop_criterion`, `stop_iters_to_check = 0`.
    pub fn validate(&self) -> Result<(), ParamError> {
        if let Some(o) = &self.optimizer {
            o.validate()?;
        }
        if let Some(c) = self.stop_criterion {
            non_negative("stop_criterion", c)?;
        }
        at_least_one("stop_iters_to_check", self.stop_iters_to_check)
    }
}

/// plenoptic's defaults for `Eigendistortion.synthesize`, and the size limit of `exact`.
pub mod eigendistortion_defaults {
    /// Eigendistortions per end of the spectrum (`power`) or in total (`randomized_svd`).
    pub const K: usize = 1;
    /// Power iterations per phase.
    pub const MAX_ITER: usize = 1000;
    /// Power method: stop once the eigenvalues change by at most this (L2 norm over the k values).
    pub const STOP_CRITERION: f64 = 1e-7;
    /// Randomized SVD oversampling.
    pub const P: usize = 5;
    /// Randomized SVD matrix-power iterations.
    pub const Q: usize = 2;
    /// `exact` refuses when the Jacobian (m × n) or the Fisher matrix (n × n) would have more
    /// elements than this: 2²⁴ float32 values are 64 MiB each, reached by a one-channel 64 × 64
    /// image (n = 4096), whose dense `eigh` already takes about a minute. plenoptic only warns
    /// (above m·n = 10⁶) and then runs out of memory or time on larger inputs.
    pub const EXACT_MAX_ELEMENTS: i64 = 1 << 24;
}

/// How Eigendistortion finds its eigendistortions (`synthesize(method=...)`); as JSON
/// `{"name": "power", "k": 1, ...}`. Only the arguments a method reads belong to it: `exact`
/// ignores `k`, `p`, `q`, `max_iter` and `stop_criterion`, as plenoptic does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Method {
    /// Full Jacobian, `F = JᵀJ`, dense symmetric eigendecomposition: all n eigenpairs.
    Exact,
    /// Block power iteration, run twice: the top `k`, then (shifted by the top eigenvalue) the
    /// bottom `k`. plenoptic's default method.
    Power {
        /// Eigendistortions at each end, 1 <= k <= n (the image's C·H·W).
        k: usize,
        /// Iterations per phase at most, >= 1.
        max_iter: usize,
        /// Convergence threshold on the change of the k eigenvalues (L2), >= 0.
        stop_criterion: f64,
    },
    /// Randomized SVD (Halko et al. 2011): the top `k`, from `k + p` random probes and `q`
    /// extra applications of `F`.
    RandomizedSvd {
        /// Eigendistortions, 1 <= k <= n.
        k: usize,
        /// Oversampling.
        p: usize,
        /// Matrix-power iterations.
        q: usize,
    },
}

impl Default for Method {
    fn default() -> Self {
        Method::power()
    }
}

impl Method {
    /// `power` with plenoptic's defaults (k = 1, max_iter = 1000, stop_criterion = 1e-7).
    pub fn power() -> Self {
        Method::Power {
            k: eigendistortion_defaults::K,
            max_iter: eigendistortion_defaults::MAX_ITER,
            stop_criterion: eigendistortion_defaults::STOP_CRITERION,
        }
    }

    /// `randomized_svd` with plenoptic's defaults (k = 1, p = 5, q = 2).
    pub fn randomized_svd() -> Self {
        Method::RandomizedSvd {
            k: eigendistortion_defaults::K,
            p: eigendistortion_defaults::P,
            q: eigendistortion_defaults::Q,
        }
    }

    /// The name plenoptic gives the method.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Power { .. } => "power",
            Method::RandomizedSvd { .. } => "randomized_svd",
        }
    }

    /// The checks that do not need the image: `k >= 1`, and for `power` `max_iter >= 1` and
    /// a non-negative `stop_criterion`.
    ///
    /// # Errors
    /// The first argument out of range.
    pub fn validate(&self) -> Result<(), ParamError> {
        match *self {
            Method::Exact => Ok(()),
            Method::Power {
                k,
                max_iter,
                stop_criterion,
            } => {
                at_least_one("k", k)?;
                at_least_one("max_iter", max_iter)?;
                non_negative("stop_criterion", stop_criterion)
            }
            Method::RandomizedSvd { k, .. } => at_least_one("k", k),
        }
    }

    /// The checks the image decides, for an image of `n` values (C·H·W): `k <= n`, and for
    /// `exact` a Fisher matrix (n × n) within [`eigendistortion_defaults::EXACT_MAX_ELEMENTS`].
    ///
    /// # Errors
    /// `k` larger than the image, or an image too large for `exact`.
    pub fn check_size(&self, n: i64) -> Result<(), ParamError> {
        let k = match *self {
            Method::Exact => {
                let fisher = n.saturating_mul(n);
                if fisher > eigendistortion_defaults::EXACT_MAX_ELEMENTS {
                    return Err(ParamError::new(
                        "method",
                        format!(
                            "exact needs the Fisher matrix ({n} × {n} = {fisher} elements) of an \
                             image of n = {n} values, above the limit of {}; use power or \
                             randomized_svd, or a smaller image",
                            eigendistortion_defaults::EXACT_MAX_ELEMENTS
                        ),
                    ));
                }
                return Ok(());
            }
            Method::Power { k, .. } | Method::RandomizedSvd { k, .. } => k,
        };
        if k as i64 > n {
            return Err(ParamError::new(
                "k",
                format!("must be at most the image's number of values n = C·H·W = {n}, got {k}"),
            ));
        }
        Ok(())
    }
}
