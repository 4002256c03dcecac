//! Walking a plan: all tasks in index order, or one shard of them for a job array. Tasks
//! are built on demand; skipping an excluded position or another shard's task costs a few
//! divisions, not a resolution.
use crate::error::SweepError;
use crate::plan::Plan;
use crate::task::Task;

/// How [`Plan::shard_with`] splits the tasks among `n` shards. Both count tasks after
/// exclusions, in index order (rank `k` = the `k`-th task that is not excluded), so shard
/// sizes differ by at most one, and both depend on the spec only: every job of an array
/// computes the same split without talking to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardScheme {
    /// Shard `i` takes ranks `i, i+n, i+2n, ...` (task rank modulo `n`). The default:
    /// slow and fast parts of the grid (a large `max_iter`, a big image) are spread evenly
    /// over the jobs.
    #[default]
    Strided,
    /// Shard `i` takes ranks `floor(i*len/n) .. floor((i+1)*len/n)`: neighbouring tasks
    /// (which share the slow axes, e.g. the image) stay in one job.
    Contiguous,
}

/// Grid positions of the tasks (excluded positions skipped), in index order.
#[derive(Debug, Clone)]
pub struct Indices<'p> {
    plan: &'p Plan,
    next: u64,
}

impl Iterator for Indices<'_> {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        while self.next < self.plan.grid_size {
            let i = self.next;
            self.next += 1;
            if self.plan.spec.excludes.is_empty()
                || self.plan.excluded_by(&self.plan.rows_of(i)).is_none()
            {
                return Some(i);
            }
        }
        None
    }
}

impl Plan {
    /// Grid positions of all tasks, in order.
    pub fn indices(&self) -> Indices<'_> {
        Indices {
            plan: self,
            next: 0,
        }
    }

    /// All tasks, in index order, built one at a time. An item is an error only for a
    /// combination that planning could not check (see [`SweepError::Task`]).
    pub fn iter(&self) -> impl Iterator<Item = Result<Task, SweepError>> + '_ {
        self.indices().map(move |i| self.build_at(i))
    }

    fn build_at(&self, index: u64) -> Result<Task, SweepError> {
        let rows = self.rows_of(index);
        self.build(index, &rows)
            .map_err(|f| self.task_error(index, &rows, f))
    }

    fn check_shard(&self, i: u64, n: u64) -> Result<(), SweepError> {
        if n == 0 || i >= n {
            return Err(SweepError::BadShard { index: i, count: n });
        }
        Ok(())
    }

    /// Grid positions of the tasks of shard `i` of `n` (`0 <= i < n`).
    pub fn shard_indices(
        &self,
        i: u64,
        n: u64,
        scheme: ShardScheme,
    ) -> Result<Box<dyn Iterator<Item = u64> + Send + '_>, SweepError> {
        self.check_shard(i, n)?;
        Ok(match scheme {
            ShardScheme::Strided => Box::new(
                self.indices()
                    .enumerate()
                    .filter(move |(rank, _)| *rank as u64 % n == i)
                    .map(|(_, idx)| idx),
            ),
            ShardScheme::Contiguous => {
                let (start, end) = self.contiguous_range(i, n);
                Box::new(
                    self.indices()
                        .skip(start as usize)
                        .take((end - start) as usize),
                )
            }
        })
    }

    fn contiguous_range(&self, i: u64, n: u64) -> (u64, u64) {
        let at = |k: u64| ((k as u128 * self.len as u128) / n as u128) as u64;
        (at(i), at(i + 1))
    }

    /// How many tasks shard `i` of `n` has.
    pub fn shard_len(&self, i: u64, n: u64, scheme: ShardScheme) -> Result<u64, SweepError> {
        self.check_shard(i, n)?;
        Ok(match scheme {
            ShardScheme::Strided => (self.len + n - 1 - i) / n,
            ShardScheme::Contiguous => {
                let (a, b) = self.contiguous_range(i, n);
                b - a
            }
        })
    }

    /// The tasks of shard `i` of `n` with the default [`ShardScheme::Strided`]: for a job
    /// array, `plan.shard(array_index, array_size)`.
    pub fn shard(
        &self,
        i: u64,
        n: u64,
    ) -> Result<impl Iterator<Item = Result<Task, SweepError>> + '_, SweepError> {
        self.shard_with(i, n, ShardScheme::Strided)
    }

    /// The tasks of shard `i` of `n`.
    pub fn shard_with(
        &self,
        i: u64,
        n: u64,
        scheme: ShardScheme,
    ) -> Result<impl Iterator<Item = Result<Task, SweepError>> + '_, SweepError> {
        Ok(self
            .shard_indices(i, n, scheme)?
            .map(move |idx| self.build_at(idx)))
    }
}
