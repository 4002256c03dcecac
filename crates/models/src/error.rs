//! The error type of the models crate: every failure names what was wrong and what was expected.
use std::path::PathBuf;

/// Errors raised while building, validating or running models and metrics.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model or metric name that the registry does not know.
    #[error("unknown {kind} `{name}`; valid {kind}s: {valid}")]
    UnknownName {
        /// `model` or `metric`.
        kind: &'static str,
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        valid: String,
    },
    /// A parameter that the named model or metric does not take.
    #[error("{owner}: unknown parameter `{param}`; valid parameters: {valid}")]
    UnknownParam {
        /// The model or metric name.
        owner: String,
        /// The key given.
        param: String,
        /// Its parameter names, comma-separated (`(none)` when it takes none).
        valid: String,
    },
    /// A parameter with the wrong type or an out-of-range value.
    #[error("{owner}.{param}: {msg}")]
    InvalidParam {
        /// The model or metric name.
        owner: String,
        /// The parameter.
        param: String,
        /// What was given and what was expected.
        msg: String,
    },
    /// A spec that is not a JSON object of the expected shape.
    #[error("invalid spec: {0}")]
    Spec(String),
    /// An image file that cannot be read or decoded.
    #[error("image {}: {msg}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        msg: String,
    },
    /// An input whose shape the model or metric cannot take.
    #[error("{owner} cannot take an input of shape {shape:?}: {need}")]
    InputShape {
        /// The model or metric name.
        owner: String,
        /// The input's shape, (N, C, H, W) for a batch.
        shape: Vec<i64>,
        /// What it needs (channels, minimum height and width, and why).
        need: String,
    },
    /// A failure inside libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Any other error, wrapped.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    pub(crate) fn invalid(owner: &str, param: &str, msg: impl Into<String>) -> Self {
        ModelError::InvalidParam {
            owner: owner.to_string(),
            param: param.to_string(),
            msg: msg.into(),
        }
    }

    pub(crate) fn shape(owner: &str, shape: &[i64], need: impl Into<String>) -> Self {
        ModelError::InputShape {
            owner: owner.to_string(),
            shape: shape.to_vec(),
            need: need.into(),
        }
    }
}
