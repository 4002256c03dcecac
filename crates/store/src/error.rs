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
    /// Any other error (Arrow, Parquet, object_store, I/O, JSON), wrapped.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
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
    object_store::Error,
    object_store::path::Error,
    std::io::Error,
    serde_json::Error,
    tokio::task::JoinError
);
