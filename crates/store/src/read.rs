//! Reading committed rows back (the summary, the report, the tests).
//!
//! Only files of committed batches are read: a data file without its tasks file is debris
//! of a killed process and is skipped, as if recovery had already deleted it.

use std::collections::HashSet;

use arrow_array::RecordBatch;
use object_store::path::Path;

use crate::decode;
use crate::error::Result;
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
            let committed: HashSet<String> = self
                .list(&[Table::Tasks.name()])
                .await?
                .iter()
                .filter_map(|f| Store::batch_of(&f.path))
                .collect();
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
