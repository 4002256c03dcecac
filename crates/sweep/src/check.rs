//! Checking tasks one by one before anything runs: every task of the plan (or of one shard)
//! is resolved, typed and checked against its images, without rendering ids. Distinct
//! values are checked once (the caches of `build`), so a task costs a few lookups: the
//! million-task test of `tests/expand.rs` plans, checking every task, in a few seconds.
use crate::error::{Location, SweepError};
use crate::expand::ShardScheme;
use crate::plan::{CheckScope, Fail, Plan};

impl Plan {
    /// Checks every task of `scope` (parameters and the rules relating them, model/metric
    /// against each image's shape, pair shapes, images against `allowed_range`) and returns
    /// how many were checked.
    ///
    /// # Errors
    /// The first task that fails, as [`SweepError::Spec`] at the spec value to blame, with
    /// the task's index and coordinates in the message; a shard that does not exist.
    pub fn check(&self, scope: CheckScope) -> Result<u64, SweepError> {
        let indices: Box<dyn Iterator<Item = u64> + '_> = match scope {
            CheckScope::All => Box::new(self.indices()),
            CheckScope::Shard { index, count } => {
                self.shard_indices(index, count, ShardScheme::Strided)?
            }
            CheckScope::Values => return Ok(0),
        };
        let mut checked = 0;
        for index in indices {
            let rows = self.rows_of(index);
            if let Err(fail) = self.parts(&rows) {
                return Err(self.check_error(index, &rows, fail));
            }
            checked += 1;
        }
        Ok(checked)
    }

    fn check_error(&self, index: u64, rows: &[usize], fail: Fail) -> SweepError {
        let at = fail.at.unwrap_or_else(|| Location {
            file: self.spec.src.file.clone(),
            key: String::new(),
            line: None,
        });
        let coords = self.coords_text(rows);
        let task = if coords.is_empty() {
            format!("task {index}")
        } else {
            format!("task {index}: {coords}")
        };
        SweepError::Spec {
            at,
            message: format!("{} ({task})", fail.message),
        }
    }
}
