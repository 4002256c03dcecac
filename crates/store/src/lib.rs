//! synthsweep's output tables: Arrow schemas, Parquet files on local disk or S3, and the
//! commit protocol that makes each task visible exactly once, all or nothing.
//!
//! # Layout
//!
//! ```text
//! ROOT/tasks/part-<batch_id>.parquet     one row per committed task: the commit point
//! ROOT/losses/part-<batch_id>.parquet    per-iteration records
//! ROOT/eigen/part-<batch_id>.parquet     eigenvalues
//! ROOT/images/part-<batch_id>.parquet    images
//! ROOT/scores/part-<batch_id>.parquet    metric values between images
//! ROOT/_runs/<run_id>.json               provenance of each run
//! ROOT/_txn/uncommit-<id>.json           an uncommit in progress (normally absent)
//! ROOT/_staging/<lease_id>/              local roots: files before their rename
//! ROOT/_leases/<lease_id>.json           one per live writer, renewed by its heartbeat
//! ROOT/_claims/<task_id>/g<NNNNNN>       who runs a task (create-if-absent generations)
//! ROOT/_claimsets/<lease_id>-s<N>.json   one writer's claim of a group of tasks
//! ROOT/_locks/, ROOT/_clock/             the uncommit lock; storage-clock probes
//! ```
//!
//! Table folders hold Parquet files only, so `polars.scan_parquet("ROOT/losses/**/*.parquet")`,
//! `pandas.read_parquet("ROOT/losses")`, `pyarrow.dataset` and DuckDB read them as they are.
//! The schemas come from `schemas/<table>.json` at the repository root ([`Table::schema`]).
//!
//! # Commit protocol
//!
//! A [`Writer`] buffers [`TaskResult`]s and flushes a batch (at N tasks, M bytes, T seconds
//! or [`Writer::finish`]): it writes the batch's four data files first and its `tasks` file
//! last. **A task is committed exactly when its row is in a `tasks` file**, and each file
//! appears atomically (local: written under `_staging/`, then renamed; S3: one PUT or a
//! completed multipart upload). So whenever the process dies, a task is either in `tasks`
//! with all its rows in place, or not in `tasks` at all; the data files of a batch whose
//! `tasks` file never appeared are orphans, deleted by [`Store::recover`] before new work
//! starts. Batch ids (`<lease_id>-<seq>`) never repeat, so writers in many processes
//! never touch each other's files.
//!
//! # Many writers
//!
//! Each writer process starts a session ([`Store::start_session`]): a lease renewed by a
//! heartbeat and judged with the storage's clock. It claims tasks before running them
//! ([`Store::claim`]: a claim set for a group, create-if-absent task claims where sets
//! cross), commits only tasks whose claim is still its own and
//! only while its lease is valid, and takes over the claims of writers whose lease expired.
//! Recovery touches only dead writers' leftovers. So any number of writers can share a root,
//! and every task is committed once.
//!
//! A re-run reads the [`Ledger`] (the committed task ids and statuses) and skips them; a
//! writer refuses a committed task, so nothing is committed twice. `--retry-failed`
//! uncommits the failed tasks first ([`Store::uncommit`]: intent saved in `_txn/`, then the
//! `tasks` rows removed, then the data rows), so `tasks` never holds a task twice: a failed
//! task's old rows are gone before its new result is committed. Details and the reasoning:
//! `crates/store/PROTOCOL.md`.
//!
//! # Use
//!
//! ```no_run
//! use synthsweep_store::*;
//! # fn main() -> Result<()> {
//! let store = Store::open(&OutputRoot::parse("s3://bucket/study1")?)?;
//! let prepared = store.prepare(PrepareOptions { retry_failed: true, ..Default::default() })?;
//! let run_id = new_run_id();
//! store.write_run(&RunInfo::new(&run_id, "spec text"))?;
//! let mut writer = store.writer(WriterOptions::new(&run_id), &prepared.ledger)?;
//! # let tasks: Vec<TaskRow> = vec![];
//! for task in tasks {
//!     if prepared.ledger.is_committed(&task.task_id) { continue; }
//!     writer.push(TaskResult { task, ..Default::default() })?;
//! }
//! writer.finish()?;
//! println!("{}", store.summary()?);
//! # Ok(()) }
//! ```

mod activity;
mod claims;
mod claimsets;
mod decode;
mod encode;
mod error;
mod lease;
mod ledger;
mod prepare;
mod read;
mod recover;
mod root;
mod rows;
mod runs;
mod schema;
mod session;
mod store;
mod summary;
mod writer;

pub use activity::{Activity, ClaimView};
pub use claims::{Claim, PendingClaims};
pub use encode::{from_micros, to_micros};
pub use error::{Result, StoreError};
pub use lease::{LeaseOptions, LeaseView, WriterIdentity, WriterInfo, LEASE_SECS_ENV};
pub use ledger::{Committed, Ledger};
pub use prepare::{PrepareOptions, Prepared};
pub use read::Dataset;
pub use recover::{RecoverOptions, RecoveryReport};
pub use root::{OutputRoot, StoreOptions};
pub use rows::{EigenRow, ImageRow, LossRow, ScoreRow, TaskResult, TaskRow, TaskStatus};
pub use runs::{hostname, new_run_id, now_rfc3339, RunInfo};
pub use schema::{parse_schema, parse_type, ColumnSpec, Table};
pub use session::SessionEnd;
pub use store::Store;
pub use summary::{Durations, ErrorCount, Summary};
pub use writer::{BatchReport, FaultPoint, Writer, WriterOptions, WriterStats};

/// Arrow record batches of rows, exactly as the writer stores them (for tools that want
/// Arrow data without going through files).
pub mod arrow {
    pub use crate::encode::{eigen, images, losses, scores, tasks};
}
