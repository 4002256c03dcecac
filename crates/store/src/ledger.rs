//! The ledger of committed tasks: what `ROOT/tasks/*.parquet` says.
//!
//! A task is committed exactly when a row for it is in one of those files. Everything else
//! (data files without a tasks file, temporary files, half-done uncommits) is debris of a
//! killed process that [`Store::recover`] removes. See `PROTOCOL.md`.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use object_store::path::Path;

use crate::error::{Result, StoreError};
use crate::rows::TaskStatus;
use crate::schema::Table;
use crate::store::Store;

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

impl Store {
    /// Reads the ledger: every committed task with its status and batch.
    pub fn ledger(&self) -> Result<Ledger> {
        self.block_on(self.ledger_async())
    }

    pub(crate) async fn ledger_async(&self) -> Result<Ledger> {
        Ok(self.ledger_and_files().await?.0)
    }

    /// The ledger and the tasks files it was read from.
    pub(crate) async fn ledger_and_files(&self) -> Result<(Ledger, Vec<String>)> {
        let (names, files) = self.read_new_tasks_files(&HashSet::new()).await?;
        let mut ledger = Ledger::default();
        for (batch_id, rows) in files {
            ledger.batches.insert(batch_id.clone(), rows.len());
            for (task_id, c) in rows {
                ledger.insert(task_id, batch_id.clone(), c);
            }
        }
        ledger.duplicates.sort();
        Ok((ledger, names))
    }

    /// Lists the tasks files and reads those not in `seen`: their paths, and for each its
    /// batch id and rows (task id, commit). A file listed and gone by the time it is read
    /// (rewritten away by an uncommit) is skipped.
    pub(crate) async fn read_new_tasks_files(
        &self,
        seen: &HashSet<String>,
    ) -> Result<(Vec<String>, TasksFiles)> {
        let files = self.list(&[Table::Tasks.name()]).await?;
        let paths: Vec<Path> = files
            .into_iter()
            .filter(|f| Store::batch_of(&f.path).is_some() && !seen.contains(f.path.as_ref()))
            .map(|f| f.path)
            .collect();
        let mut names = Vec::new();
        let mut out = Vec::new();
        for (path, batches) in self.read_many(paths).await? {
            let Some(batches) = batches else { continue };
            let batch_id = Store::batch_of(&path).unwrap_or_default();
            names.push(path.to_string());
            let mut rows = Vec::new();
            for b in &batches {
                for (task_id, status, run_id) in ledger_columns(b)? {
                    rows.push((
                        task_id,
                        Committed {
                            status,
                            batch_id: batch_id.clone(),
                            run_id,
                        },
                    ));
                }
            }
            out.push((batch_id, rows));
        }
        Ok((names, out))
    }
}

/// Rows of tasks files: per batch id, (task id, commit).
pub(crate) type TasksFiles = Vec<(String, Vec<(String, Committed)>)>;

impl Ledger {
    /// Records a committed row; a task seen in another batch before is a duplicate.
    pub(crate) fn insert(&mut self, task_id: String, batch_id: String, c: Committed) {
        if let Some(old) = self.tasks.get(&task_id) {
            if old.batch_id != batch_id {
                match self.duplicates.iter_mut().find(|(t, _)| *t == task_id) {
                    Some((_, b)) => {
                        if !b.contains(&batch_id) {
                            b.push(batch_id.clone());
                        }
                    }
                    None => self.duplicates.push((
                        task_id.clone(),
                        vec![old.batch_id.clone(), batch_id.clone()],
                    )),
                }
                if let Some((_, b)) = self.duplicates.iter_mut().find(|(t, _)| *t == task_id) {
                    b.sort();
                }
            }
        }
        self.tasks.insert(task_id, c);
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
