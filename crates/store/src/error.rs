//! The error type of the store crate.

/// Errors raised while writing, committing, recovering or reading output tables.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The output root could not be understood or opened.
    #[error("output root {root}: {msg}")]
    Root { root: String, msg: String },
    /// A schema file in `schemas/` that cannot be turned into an Arrow schema.
    #[error("schema of table {table}: {msg}")]
    Schema { table: String, msg: String },
    /// A setting that is not valid (an environment variable, an option).
    #[error("{0}")]
    Config(String),
    /// A writer operation that needs a writer session (a lease), called without one.
    #[error("{0} needs a writer session: call Store::start_session first")]
    NoSession(&'static str),
    /// A row or file that does not fit its table's schema.
    #[error("{table} table, {what}: {msg}")]
    Invalid {
        table: String,
        what: String,
        msg: String,
    },
    /// A result for a task that is already committed (in the ledger or by this writer).
    #[error("task {task_id} is already committed (batch {batch_id}); refusing to commit it twice")]
    AlreadyCommitted { task_id: String, batch_id: String },
    /// A fault injected by a test stopped the writer on purpose (see `FaultPoint`).
    #[error("injected fault: writer stopped at {0:?}")]
    Injected(crate::writer::FaultPoint),
    /// The storage failed: an S3 request that failed after its retries, a disk that is full,
    /// a permission lost, a timeout. Transient as far as the data is concerned (nothing
    /// half-written is visible), so a run that meets it can be run again as it is.
    #[error("storage failure: {0}")]
    Storage(Box<dyn std::error::Error + Send + Sync>),
    /// This writer's lease could have expired (its renewals failed or the process was
    /// stalled for longer than the lease allows), so other writers may take its tasks over:
    /// it must not commit anything any more. `storage` says whether failed renewals caused
    /// it (a storage failure) rather than a stall. See `PROTOCOL.md`, "Leases".
    #[error("writer lease {lease_id} lost: {why}")]
    LeaseLost {
        lease_id: String,
        why: String,
        storage: bool,
    },
    /// Any other error (Arrow, Parquet, JSON, a task join), wrapped.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the storage failed (S3, disk, permissions, timeouts): the run can be retried
    /// as it is. The binary exits with 74 (EX_IOERR) on these, never with "bad input".
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            StoreError::Storage(_) | StoreError::LeaseLost { storage: true, .. }
        ) && !self.is_stall()
    }

    /// Whether this writer lost its lease (see [`StoreError::LeaseLost`]), or a time limit
    /// ran out because the process was stalled (the same cause, met before the lease could
    /// be judged, e.g. while writing it): transient, the run stops without committing and
    /// can be run again.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, StoreError::LeaseLost { .. }) || self.is_stall()
    }

    /// Whether this is a time limit that ran out because the process was stalled.
    pub(crate) fn is_stall(&self) -> bool {
        matches!(self, StoreError::Storage(e) if e.is::<crate::lease::Stalled>())
    }

    pub(crate) fn storage(msg: impl Into<String>) -> Self {
        StoreError::Storage(msg.into().into())
    }

    pub(crate) fn invalid(table: &str, what: impl Into<String>, msg: impl Into<String>) -> Self {
        StoreError::Invalid {
            table: table.to_string(),
            what: what.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn root(root: impl Into<String>, msg: impl Into<String>) -> Self {
        StoreError::Root {
            root: root.into(),
            msg: msg.into(),
        }
    }
}

macro_rules! external {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::External(Box::new(e))
            }
        }
    )*};
}
external!(
    arrow_schema::ArrowError,
    parquet::errors::ParquetError,
    object_store::path::Error,
    serde_json::Error,
    tokio::task::JoinError
);

// What the storage answers: object_store's errors (S3 and local disk alike) and I/O.
impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        StoreError::Storage(Box::new(e))
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Storage(Box::new(e))
    }
}
