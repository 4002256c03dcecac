//! How `Eigendistortion::synthesize` runs: the method with its parameters and plenoptic's
//! defaults (from `synthsweep_core::params`), and what the power method reports as it goes.
use serde::{Deserialize, Serialize};

pub use synthsweep_core::params::eigendistortion_defaults as defaults;
pub use synthsweep_core::params::Method;

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
    /// Which run (top or bottom eigenvalues).
    pub phase: PowerPhase,
    /// Iterations done in this phase (1-based).
    pub iteration: usize,
    /// L2 norm of the change in the k eigenvalue estimates made by this iteration.
    pub delta_eigenvalue: f64,
}

/// Iterations the power method ran in each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PowerIterations {
    /// Iterations of the run for the `k` largest eigenvalues.
    pub top: usize,
    /// Iterations of the run for the `k` smallest eigenvalues (`F` shifted by the top one).
    pub bottom: usize,
}
