//! The error type of the synthesis crate.
use synthsweep_models::ModelError;

/// Errors raised while setting up, running, saving or loading a synthesis.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A parameter outside its valid range (checked up front, before any work).
    #[error("{param}: {msg}")]
    InvalidParam { param: String, msg: String },
    /// The objective became NaN or infinite.
    #[error("loss is {value} at iteration {iteration}: the synthesis diverged (try a smaller learning rate)")]
    NonFinite { iteration: usize, value: f64 },
    /// The per-iteration callback asked to stop.
    #[error("cancelled at iteration {iteration}")]
    Cancelled { iteration: usize },
    /// A saved state that does not belong to this synthesis, or cannot be read.
    #[error("synthesis state {path}: {msg}")]
    State { path: String, msg: String },
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

impl SynthError {
    /// An invalid parameter, named as the user wrote it.
    pub fn invalid(param: &str, msg: impl Into<String>) -> Self {
        SynthError::InvalidParam {
            param: param.to_string(),
            msg: msg.into(),
        }
    }
}
