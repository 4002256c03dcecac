//! The error type of the dist crate.

/// Errors of a multi-process run: its configuration, the connection, the run itself.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A bad process count, index, host file, port or Slurm environment (exit code 2).
    #[error("{0}")]
    Config(String),
    /// The processes could not be connected (a port in use, an unreachable host):
    /// transient (exit 75), the same command may work when run again.
    #[error("cannot connect the {processes} processes: {msg}")]
    Connect { processes: usize, msg: String },
    /// Another process planned a different sweep (other spec text, other images).
    #[error("{0}")]
    Mismatch(String),
    /// Planning a task failed while the run was dispatching it.
    #[error("planning stopped the run: {0}")]
    Plan(String),
    /// The run was stopped on another process's request; the message says why.
    #[error("{0}")]
    Stopped(String),
    /// An error of the output root.
    #[error(transparent)]
    Store(#[from] synthsweep_store::StoreError),
    /// This process's engine could not go on (a commit failed).
    #[error(transparent)]
    Exec(#[from] synthsweep_exec::ExecError),
}

impl DistError {
    pub(crate) fn config(msg: impl Into<String>) -> Self {
        DistError::Config(msg.into())
    }
}

/// Result alias for this crate.
pub type Result<T, E = DistError> = std::result::Result<T, E>;
