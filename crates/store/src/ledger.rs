//! The ledger of committed tasks, recovery after a crash, and uncommitting tasks.
//!
//! The ledger is what `ROOT/tasks/*.parquet` says: a task is committed exactly when a row
//! for it is in one of those files. Everything else (data files without a tasks file,
//! temporary files, half-done uncommits) is debris of a killed process that [`Store::recover`]
//! removes. See `PROTOCOL.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, RecordBatch};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::rows::TaskStatus;
use crate::schema::Table;
use crate::store::{encode_parquet, Store, STAGING, TXN};
use crate::writer::FaultPoint;

/// Where and how a task is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub status: TaskStatus,
    pub batch_id: String,
    pub run_id: String,
}

/// The committed tasks of a root, read from its `tasks` table.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    tasks: HashMap<String, Committed>,
    batches: BTreeMap<String, usize>,
    /// Tasks found in more than one batch (only after a bug or a manual copy; `recover`
    /// resolves them). Each entry: task id and the batches holding it.
    pub duplicates: Vec<(String, Vec<String>)>,
}

impl Ledger {
    /// Number of committed tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }
    /// Whether nothing is committed.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
    /// The commit of a task, if it is committed.
    pub fn get(&self, task_id: &str) -> Option<&Committed> {
        self.tasks.get(task_id)
    }
    /// The status a task is committed with, if it is committed.
    pub fn status(&self, task_id: &str) -> Option<TaskStatus> {
        self.tasks.get(task_id).map(|c| c.status)
    }
    /// Whether the executor should skip this task: committed, done or failed. (With
    /// `--retry-failed`, [`Store::prepare`] uncommits the failed ones first.)
    pub fn is_committed(&self, task_id: &str) -> bool {
        self.tasks.contains_key(task_id)
    }
    /// Ids of tasks committed with this status, sorted.
    pub fn ids_with(&self, status: TaskStatus) -> Vec<String> {
        let mut v: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, c)| c.status == status)
            .map(|(id, _)| id.clone())
            .collect();
        v.sort();
        v
    }
    /// (done, failed) counts.
    pub fn counts(&self) -> (usize, usize) {
        let done = self
            .tasks
            .values()
            .filter(|c| c.status == TaskStatus::Done)
            .count();
        (done, self.tasks.len() - done)
    }
    /// Committed batches and their number of tasks.
    pub fn batches(&self) -> &BTreeMap<String, usize> {
        &self.batches
    }
    /// Iterates over (task id, commit).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Committed)> {
        self.tasks.iter()
    }
}

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
    /// Reads the ledger: every committed task with its status and batch.
    pub fn ledger(&self) -> Result<Ledger> {
        self.block_on(self.ledger_async())
    }

    pub(crate) async fn ledger_async(&self) -> Result<Ledger> {
        let files = self.list(&[Table::Tasks.name()]).await?;
        let paths: Vec<Path> = files
            .into_iter()
            .filter(|f| Store::batch_of(&f.path).is_some())
            .map(|f| f.path)
            .collect();
        let mut ledger = Ledger::default();
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for (path, batches) in self.read_many(paths).await? {
            // Listed a moment ago, gone now: another process's recovery removed it.
            let Some(batches) = batches else { continue };
            let batch_id = Store::batch_of(&path).unwrap_or_default();
            let mut n = 0;
            for b in &batches {
                for (task_id, status, run_id) in ledger_columns(b)? {
                    n += 1;
                    seen.entry(task_id.clone())
                        .or_default()
                        .push(batch_id.clone());
                    ledger.tasks.insert(
                        task_id,
                        Committed {
                            status,
                            batch_id: batch_id.clone(),
                            run_id,
                        },
                    );
                }
            }
            ledger.batches.insert(batch_id, n);
        }
        ledger.duplicates = seen
            .into_iter()
            .filter(|(_, b)| b.len() > 1)
            .map(|(id, mut b)| {
                b.sort();
                (id, b)
            })
            .collect();
        ledger.duplicates.sort();
        Ok(ledger)
    }

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

/// (task_id, status, run_id) of each row of a tasks file.
fn ledger_columns(b: &RecordBatch) -> Result<Vec<(String, TaskStatus, String)>> {
    let col = |name: &str| {
        b.column_by_name(name)
            .map(|c| c.as_string::<i32>())
            .ok_or_else(|| StoreError::invalid("tasks", name, "column missing from a tasks file"))
    };
    let (ids, statuses, runs) = (col("task_id")?, col("status")?, col("run_id")?);
    (0..b.num_rows())
        .map(|i| {
            let s = statuses.value(i);
            let status = TaskStatus::parse(s)
                .ok_or_else(|| StoreError::invalid("tasks", "status", format!("unknown {s:?}")))?;
            if ids.is_null(i) {
                return Err(StoreError::invalid("tasks", "task_id", "null task id"));
            }
            Ok((ids.value(i).to_string(), status, runs.value(i).to_string()))
        })
        .collect()
}
