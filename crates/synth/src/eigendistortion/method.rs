//! How `Eigendistortion::synthesize` runs: the method with its parameters and plenoptic's
//! defaults, and what the power method reports as it goes.
use serde::{Deserialize, Serialize};

/// plenoptic's defaults for `Eigendistortion.synthesize`, and the size limit of `exact`.
pub mod defaults {
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

/// How to find the eigendistortions (as JSON: `{"name": "power", "k": 1, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Method {
    /// Full Jacobian, `F = JᵀJ`, dense symmetric eigendecomposition: all n eigenpairs.
    Exact,
    /// Block power iteration, run twice: the top `k`, then (shifted by the top eigenvalue) the
    /// bottom `k`. plenoptic's default method.
    Power {
        k: usize,
        max_iter: usize,
        stop_criterion: f64,
    },
    /// Randomized SVD (Halko et al. 2011): the top `k`, from `k + p` random probes and `q`
    /// extra applications of `F`.
    RandomizedSvd { k: usize, p: usize, q: usize },
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
            k: defaults::K,
            max_iter: defaults::MAX_ITER,
            stop_criterion: defaults::STOP_CRITERION,
        }
    }

    /// `randomized_svd` with plenoptic's defaults (k = 1, p = 5, q = 2).
    pub fn randomized_svd() -> Self {
        Method::RandomizedSvd {
            k: defaults::K,
            p: defaults::P,
            q: defaults::Q,
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
}

/// Which run of the power method is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerPhase {
    /// Largest eigenvalues (no shift).
    Top,
    /// Smallest eigenvalues (`F` shifted by the top eigenvalue).
    Bottom,
}

/// What the per-iteration callback of the power method sees, after each iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerProgress {
    pub phase: PowerPhase,
    /// Iterations done in this phase (1-based).
    pub iteration: usize,
    /// L2 norm of the change in the k eigenvalue estimates made by this iteration.
    pub delta_eigenvalue: f64,
}

/// Iterations the power method ran in each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PowerIterations {
    pub top: usize,
    pub bottom: usize,
}
