//! Recovery after a crash, and uncommitting tasks (for `--retry-failed`).
//!
//! Recovery deletes what killed processes left behind (orphan data files, temporary
//! files, half-done uncommits) so the dataset shows only committed tasks. See `PROTOCOL.md`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use arrow_array::cast::AsArray;
use arrow_array::BooleanArray;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::rows::TaskStatus;
use crate::schema::Table;
use crate::store::{encode_parquet, Store, STAGING, TXN};
use crate::writer::FaultPoint;

/// What [`Store::recover`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Uncommits a killed process had started, now finished.
    pub intents_replayed: usize,
    /// Data files of batches whose tasks file was never written, deleted.
    pub orphan_files_deleted: Vec<String>,
    /// Temporary files under `_staging/` deleted.
    pub staging_files_deleted: usize,
    /// Tasks that were committed in more than one batch, now kept in one only.
    pub duplicates_resolved: usize,
}

impl RecoveryReport {
    /// Whether there was nothing to clean up.
    pub fn is_clean(&self) -> bool {
        *self == RecoveryReport::default()
    }
}

/// Options of [`Store::recover`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoverOptions {
    /// Leave files younger than this alone. Zero (the default) is right when no other
    /// process is writing to the root; give a margin (say, an hour) when another run may be
    /// flushing into the same root at the same time, so its in-flight batch is not taken
    /// for debris.
    pub min_age: Duration,
}

/// An uncommit in progress, saved as `_txn/uncommit-<id>.json` before any file changes, so
/// that a kill in the middle is finished by the next recovery. Batch id -> task ids.
#[derive(Debug, Serialize, Deserialize)]
struct UncommitIntent {
    batches: BTreeMap<String, Vec<String>>,
}

impl Store {
    /// Cleans up after killed processes, so the dataset shows only committed tasks:
    /// 1. finishes uncommits that were interrupted (`_txn/`);
    /// 2. deletes data files of batches that have no tasks file (the process died before
    ///    its commit point);
    /// 3. deletes leftover temporary files (`_staging/`, local roots);
    /// 4. keeps a task committed twice in one batch only (done over failed, then the
    ///    newest).
    ///
    /// Run it before new work starts, from one process (see [`RecoverOptions::min_age`]).
    pub fn recover(&self, opts: RecoverOptions) -> Result<RecoveryReport> {
        self.block_on(self.recover_async(opts))
    }

    async fn recover_async(&self, opts: RecoverOptions) -> Result<RecoveryReport> {
        let now = SystemTime::now();
        let old = |t: SystemTime| now.duration_since(t).unwrap_or_default() >= opts.min_age;
        let mut report = RecoveryReport::default();

        for f in self.list(&[TXN]).await? {
            if !old(f.last_modified) {
                continue;
            }
            let Some(data) = self.get(&f.path).await? else {
                continue;
            };
            let intent: UncommitIntent = serde_json::from_slice(&data)?;
            self.apply_uncommit(&intent).await?;
            self.delete(&f.path).await?;
            report.intents_replayed += 1;
        }

        let committed: HashSet<String> = self
            .list(&[Table::Tasks.name()])
            .await?
            .iter()
            .filter_map(|f| Store::batch_of(&f.path))
            .collect();
        for table in Table::DATA {
            for f in self.list(&[table.name()]).await? {
                let orphan = match Store::batch_of(&f.path) {
                    Some(b) => !committed.contains(&b),
                    // Not a table file at all: never ours to keep in a table folder.
                    None => true,
                };
                if orphan && old(f.last_modified) {
                    self.delete(&f.path).await?;
                    report.orphan_files_deleted.push(f.path.to_string());
                }
            }
        }
        report.orphan_files_deleted.sort();

        if let Some(dir) = &self.inner.local {
            // object_store hides its own half-written files (`name#1`) from listings, so
            // clear the staging folder directly.
            let staging = dir.join(STAGING);
            if let Ok(entries) = std::fs::read_dir(&staging) {
                for e in entries.flatten() {
                    let modified = e.metadata().and_then(|m| m.modified()).unwrap_or(now);
                    if old(modified) && std::fs::remove_file(e.path()).is_ok() {
                        report.staging_files_deleted += 1;
                    }
                }
            }
        }

        let ledger = self.ledger_async().await?;
        if !ledger.duplicates.is_empty() {
            let mut intent = UncommitIntent {
                batches: BTreeMap::new(),
            };
            for (task_id, batches) in &ledger.duplicates {
                let keep = self.preferred_copy(task_id, batches).await?;
                for b in batches.iter().filter(|b| **b != keep) {
                    intent
                        .batches
                        .entry(b.clone())
                        .or_default()
                        .push(task_id.clone());
                }
                report.duplicates_resolved += 1;
            }
            self.run_uncommit(intent).await?;
        }
        Ok(report)
    }

    /// Of the batches holding a task, the one to keep: a done row over a failed one, then
    /// the latest `finished_at`, then the greatest batch id.
    async fn preferred_copy(&self, task_id: &str, batches: &[String]) -> Result<String> {
        let mut best: Option<((bool, i64, String), String)> = None;
        for b in batches {
            let Some(rbs) = self.read_parquet(&self.table_file(Table::Tasks, b)).await? else {
                continue;
            };
            for rb in &rbs {
                for row in crate::decode::tasks(rb)? {
                    if row.task_id == task_id {
                        let key = (
                            row.status == TaskStatus::Done,
                            crate::encode::to_micros(row.finished_at),
                            b.clone(),
                        );
                        if best.as_ref().is_none_or(|(k, _)| key > *k) {
                            best = Some((key, b.clone()));
                        }
                    }
                }
            }
        }
        Ok(best.map(|(_, b)| b).unwrap_or_else(|| batches[0].clone()))
    }

    /// Uncommits tasks: removes their rows from every table, so that they count as never run
    /// and the next run runs them again. Used for `--retry-failed` (on the failed ids) and
    /// for re-running chosen tasks. Unknown ids are ignored. Returns how many were committed.
    ///
    /// Crash-safe: the intent is saved first, the tasks rows go before the data rows, and
    /// [`Store::recover`] finishes an interrupted uncommit. Only one process should
    /// uncommit at a time (two rewriting the same batch file would race).
    pub fn uncommit(&self, task_ids: &[String]) -> Result<usize> {
        self.block_on(async {
            let ledger = self.ledger_async().await?;
            let mut intent = UncommitIntent {
                batches: BTreeMap::new(),
            };
            let mut n = 0;
            for id in task_ids.iter().collect::<BTreeSet<_>>() {
                if let Some(c) = ledger.get(id) {
                    intent
                        .batches
                        .entry(c.batch_id.clone())
                        .or_default()
                        .push(id.clone());
                    n += 1;
                }
            }
            self.run_uncommit(intent).await?;
            Ok(n)
        })
    }

    async fn run_uncommit(&self, intent: UncommitIntent) -> Result<()> {
        if intent.batches.is_empty() {
            return Ok(());
        }
        let path = self.path(&[
            TXN,
            &format!("uncommit-{}.json", uuid::Uuid::new_v4().simple()),
        ]);
        self.put_atomic(&path, serde_json::to_vec_pretty(&intent)?)
            .await?;
        self.check_fault(FaultPoint::AfterUncommitIntent)?;
        self.apply_uncommit(&intent).await?;
        self.delete(&path).await
    }

    /// Removes the intent's rows, batch by batch: tasks file first (from then on the tasks
    /// are uncommitted), then the data files. Idempotent, so recovery can replay it.
    async fn apply_uncommit(&self, intent: &UncommitIntent) -> Result<()> {
        for (batch_id, ids) in &intent.batches {
            let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
            self.remove_rows(Table::Tasks, batch_id, &ids).await?;
            self.check_fault(FaultPoint::AfterUncommitTasksFile)?;
            let batch_left = self
                .get(&self.table_file(Table::Tasks, batch_id))
                .await?
                .is_some();
            for table in Table::DATA {
                if batch_left {
                    self.remove_rows(table, batch_id, &ids).await?;
                } else {
                    // The whole batch is uncommitted: its data files are orphans.
                    self.delete(&self.table_file(table, batch_id)).await?;
                }
            }
        }
        Ok(())
    }

    /// Rewrites one batch file without the rows of `ids` (atomically replacing it), or
    /// deletes it when no row is left. A missing file or no matching row: nothing to do.
    async fn remove_rows(&self, table: Table, batch_id: &str, ids: &HashSet<&str>) -> Result<()> {
        let path = self.table_file(table, batch_id);
        let Some(batches) = self.read_parquet(&path).await? else {
            return Ok(());
        };
        let mut kept = Vec::with_capacity(batches.len());
        let mut removed = 0;
        for b in &batches {
            let task_id = b
                .column_by_name("task_id")
                .ok_or_else(|| StoreError::invalid(table.name(), "task_id", "column missing"))?
                .as_string::<i32>();
            let keep: BooleanArray = task_id
                .iter()
                .map(|t| Some(!t.is_some_and(|t| ids.contains(t))))
                .collect();
            removed += keep.false_count();
            kept.push(arrow_select::filter::filter_record_batch(b, &keep)?);
        }
        if removed == 0 {
            return Ok(());
        }
        if kept.iter().all(|b| b.num_rows() == 0) && table == Table::Tasks {
            return self.delete(&path).await;
        }
        let merged = arrow_select::concat::concat_batches(&table.schema(), &kept)?;
        self.put_atomic(&path, encode_parquet(&merged)?).await
    }
}
