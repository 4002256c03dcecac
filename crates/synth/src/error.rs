//! The error type of the synthesis crate.
use synthsweep_models::ModelError;

/// Errors raised while setting up, running, saving or loading a synthesis.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A parameter outside its valid range (checked up front, before any work).
    #[error("{param}: {msg}")]
    InvalidParam {
        /// The parameter, as the user wrote it.
        param: String,
        /// The value given and what was expected.
        msg: String,
    },
    /// The objective became NaN or infinite.
    #[error("loss is {value} at iteration {iteration}: the synthesis diverged (try a smaller learning rate)")]
    NonFinite {
        /// The iteration (0-based) whose objective is not finite.
        iteration: usize,
        /// The objective's value (NaN or ±inf).
        value: f64,
    },
    /// The model's representation of a target image (or a metric at the initial image) is
    /// already NaN or infinite before any iteration: the image and the model are at fault,
    /// not the optimization.
    #[error("{what} contains {kind} before any iteration ({detail}): the image itself has no finite value under this {by}, so no learning rate or other synthesis setting helps")]
    NonFiniteTarget {
        /// What holds the values: "`portilla_simoncelli`'s representation of the target image".
        what: String,
        /// "NaN", "infinite values" or both.
        kind: &'static str,
        /// Which statistics, or how many values.
        detail: String,
        /// "model" or "metric".
        by: &'static str,
    },
    /// The per-iteration callback asked to stop.
    #[error("cancelled at iteration {iteration}")]
    Cancelled {
        /// The iteration (0-based, as in the records) after which the callback asked to stop.
        iteration: usize,
    },
    /// A saved state that does not belong to this synthesis, or cannot be read.
    #[error("synthesis state {path}: {msg}")]
    State {
        /// The state file.
        path: String,
        /// What does not match or cannot be read.
        msg: String,
    },
    /// A model or metric failure.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A failure inside libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Any other error, wrapped.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for this crate.
pub type Result<T, E = SynthError> = std::result::Result<T, E>;

impl From<synthsweep_core::ParamError> for SynthError {
    fn from(e: synthsweep_core::ParamError) -> Self {
        SynthError::InvalidParam {
            param: e.param,
            msg: e.message,
        }
    }
}

impl SynthError {
    /// An invalid parameter, named as the user wrote it.
    pub fn invalid(param: &str, msg: impl Into<String>) -> Self {
        SynthError::InvalidParam {
            param: param.to_string(),
            msg: msg.into(),
        }
    }
}
