//! The error type of the exec crate: why an engine run could not go on. A task's own
//! failure is not one of these: it is committed with status `failed` (see
//! [`crate::worker::TaskError`]).

/// Errors of a run as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Reading, writing or committing to the output root failed: a storage failure (an
    /// outage, a full disk, a lost permission), not bad input.
    #[error(transparent)]
    Store(#[from] synthsweep_store::StoreError),
    /// A worker slot thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Thread(String),
}
