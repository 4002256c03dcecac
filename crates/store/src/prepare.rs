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
    /// Gets a root ready for a run: recovers from dead writers (sparing live ones),
    /// uncommits failed tasks when retrying them, and reads the ledger. With a writer
    /// session, start the session first (see `PROTOCOL.md`: a writer reads the ledger only
    /// after its lease exists); the ledger read here is then the session's starting view.
    ///
    /// # Errors
    /// [`StoreError::Storage`](crate::StoreError::Storage),
    /// [`StoreError::LeaseLost`](crate::StoreError::LeaseLost).
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
            ledger: self.read_ledger()?,
        })
    }

    /// Reads the ledger; with a writer session, it also becomes the session's view (what
    /// [`Store::refresh_ledger`] reads on from).
    ///
    /// # Errors
    /// [`StoreError::Storage`](crate::StoreError::Storage).
    pub fn read_ledger(&self) -> Result<Ledger> {
        let (ledger, files) = self.block_on(self.ledger_and_files())?;
        if let Some(s) = self.current_session() {
            let mut view = s.view.lock().unwrap();
            view.ledger = ledger.clone();
            view.files = files.into_iter().collect();
        }
        Ok(ledger)
    }
}
