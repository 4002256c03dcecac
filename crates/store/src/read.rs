//! Reading committed rows back (the summary, the report, the tests).
//!
//! Only files of committed batches are read: a data file without its tasks file is debris
//! of a killed process and is skipped, as if recovery had already deleted it.

use std::collections::HashSet;

use arrow_array::RecordBatch;
use object_store::path::Path;

use crate::decode;
use crate::error::{Result, StoreError};
use crate::rows::{EigenRow, ImageRow, LossRow, ScoreRow, TaskRow};
use crate::schema::Table;
use crate::store::Store;

/// Every committed row of every table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub tasks: Vec<TaskRow>,
    pub losses: Vec<LossRow>,
    pub eigen: Vec<EigenRow>,
    pub images: Vec<ImageRow>,
    pub scores: Vec<ScoreRow>,
}

impl Store {
    /// Every committed `tasks` row, ordered by batch then file order.
    pub fn read_tasks(&self) -> Result<Vec<TaskRow>> {
        let batches = self.block_on(self.read_table(Table::Tasks, None))?;
        let mut rows = Vec::new();
        for b in &batches {
            rows.extend(decode::tasks(b)?);
        }
        Ok(rows)
    }

    /// Every committed row of every table (loads all of it in memory: for tests, small
    /// studies and tools; analyses should read the Parquet files with a query engine).
    pub fn read_dataset(&self) -> Result<Dataset> {
        self.block_on(async {
            let committed = self.committed_batch_ids().await?;
            let mut d = Dataset::default();
            for b in self.read_table(Table::Tasks, None).await? {
                d.tasks.extend(decode::tasks(&b)?);
            }
            for b in self.read_table(Table::Losses, Some(&committed)).await? {
                d.losses.extend(decode::losses(&b)?);
            }
            for b in self.read_table(Table::Eigen, Some(&committed)).await? {
                d.eigen.extend(decode::eigen(&b)?);
            }
            for b in self.read_table(Table::Images, Some(&committed)).await? {
                d.images.extend(decode::images(&b)?);
            }
            for b in self.read_table(Table::Scores, Some(&committed)).await? {
                d.scores.extend(decode::scores(&b)?);
            }
            Ok(d)
        })
    }

    /// The record batches of a table's files, in batch id order; with `only`, just the
    /// files of those batches.
    async fn read_table(
        &self,
        table: Table,
        only: Option<&HashSet<String>>,
    ) -> Result<Vec<RecordBatch>> {
        let mut paths: Vec<(String, Path)> = self
            .list(&[table.name()])
            .await?
            .into_iter()
            .filter_map(|f| Store::batch_of(&f.path).map(|b| (b, f.path)))
            .filter(|(b, _)| only.is_none_or(|o| o.contains(b)))
            .collect();
        paths.sort();
        let files = self
            .read_many(paths.into_iter().map(|(_, p)| p).collect())
            .await?;
        Ok(files
            .into_iter()
            .flat_map(|(_, b)| b.unwrap_or_default())
            .collect())
    }
}

/// Streaming reads, one committed batch at a time (the report's way through a large root:
/// memory bounded by one batch, not by the number of tasks).
impl Store {
    /// The batch ids with a `tasks` file (the committed batches), from one listing.
    pub(crate) async fn committed_batch_ids(&self) -> Result<HashSet<String>> {
        Ok(self
            .list(&[Table::Tasks.name()])
            .await?
            .iter()
            .filter_map(|f| Store::batch_of(&f.path))
            .collect())
    }

    /// Ids of the committed batches (those whose `tasks` file exists), sorted.
    ///
    /// # Errors
    ///
    /// A storage failure listing `tasks/`.
    pub fn committed_batches(&self) -> Result<Vec<String>> {
        self.block_on(async {
            let mut ids: Vec<String> = self.committed_batch_ids().await?.into_iter().collect();
            ids.sort();
            Ok(ids)
        })
    }

    /// The `tasks` rows of one committed batch (empty when its file is gone, e.g. removed
    /// by an uncommit since it was listed).
    ///
    /// # Errors
    ///
    /// A storage failure, or a file that is not Parquet of the `tasks` schema.
    pub fn read_batch_tasks(&self, batch_id: &str) -> Result<Vec<TaskRow>> {
        let path = self.table_file(Table::Tasks, batch_id);
        let mut rows = Vec::new();
        for b in self.block_on(self.read_parquet(&path))?.unwrap_or_default() {
            rows.extend(decode::tasks(&b)?);
        }
        Ok(rows)
    }

    /// The data rows (losses, eigen, images, scores) of one committed batch; `tasks` is left
    /// empty (see [`Store::read_batch_tasks`]). Empty when the batch is no longer committed
    /// (its tasks file removed by an uncommit since it was listed).
    ///
    /// # Errors
    ///
    /// A storage failure, a file that is not Parquet of its table's schema, or
    /// [`StoreError::Invalid`] naming a data file missing while the batch's tasks file is
    /// there (every commit writes all five files before its tasks file, so its tasks' rows
    /// were lost: a file removed by hand, or by a clean-up that took the batch for an
    /// orphan). Its tasks' rows are not taken for none.
    pub fn read_batch_data(&self, batch_id: &str) -> Result<Dataset> {
        self.block_on(async {
            let tables = [Table::Losses, Table::Eigen, Table::Images, Table::Scores];
            let paths = tables
                .iter()
                .map(|&t| self.table_file(t, batch_id))
                .collect();
            let files = self.read_many(paths).await?;
            let missing: Vec<&str> = tables
                .iter()
                .zip(&files)
                .filter(|(_, (_, b))| b.is_none())
                .map(|(t, _)| t.name())
                .collect();
            if !missing.is_empty() {
                let tasks = self.table_file(Table::Tasks, batch_id);
                if self.get(&tasks).await?.is_none() {
                    return Ok(Dataset::default());
                }
                return Err(StoreError::invalid(
                    missing[0],
                    format!("batch {batch_id}"),
                    format!(
                        "{} missing while tasks/part-{batch_id}.parquet is there: the batch is committed, and every commit writes its data files first, so rows of its tasks were lost (a file removed by hand, or by a clean-up that took the batch for an orphan)",
                        missing
                            .iter()
                            .map(|t| format!("{t}/part-{batch_id}.parquet"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let mut d = Dataset::default();
            for (table, (_, batches)) in tables.iter().zip(files) {
                for b in batches.unwrap_or_default() {
                    match table {
                        Table::Losses => d.losses.extend(decode::losses(&b)?),
                        Table::Eigen => d.eigen.extend(decode::eigen(&b)?),
                        Table::Images => d.images.extend(decode::images(&b)?),
                        _ => d.scores.extend(decode::scores(&b)?),
                    }
                }
            }
            Ok(d)
        })
    }
}
