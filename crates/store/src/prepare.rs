//! The start of a run: recovery, then (optionally) forgetting failures, then the ledger.

use crate::error::Result;
use crate::ledger::Ledger;
use crate::recover::{RecoverOptions, RecoveryReport};
use crate::rows::TaskStatus;
use crate::store::Store;

/// What a run asks of [`Store::prepare`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    pub recover: RecoverOptions,
    /// `--retry-failed`: uncommit every failed task so this run runs it again.
    pub retry_failed: bool,
}

/// What [`Store::prepare`] did and found.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub recovery: RecoveryReport,
    /// Failed tasks uncommitted for a retry.
    pub uncommitted_failed: usize,
    /// The committed tasks after all that: skip these, pass it to [`Store::writer`].
    pub ledger: Ledger,
}

impl Store {
    /// Gets a root ready for a run, from one process before any writer starts: recovers
    /// from killed runs, uncommits failed tasks when retrying them, and reads the ledger.
    pub fn prepare(&self, opts: PrepareOptions) -> Result<Prepared> {
        let recovery = self.recover(opts.recover)?;
        let mut uncommitted_failed = 0;
        if opts.retry_failed {
            let failed = self.ledger()?.ids_with(TaskStatus::Failed);
            uncommitted_failed = self.uncommit(&failed)?;
        }
        Ok(Prepared {
            recovery,
            uncommitted_failed,
            ledger: self.ledger()?,
        })
    }
}
