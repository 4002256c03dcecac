//! `Writer`: buffers task results and commits them in batches.
//!
//! A flush writes the batch's `losses`, `eigen`, `images` and `scores` files first and the
//! `tasks` file last; the tasks file is the commit point (see `PROTOCOL.md`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::encode;
use crate::error::{Result, StoreError};
use crate::ledger::Ledger;
use crate::rows::TaskResult;
use crate::schema::Table;
use crate::store::{encode_parquet, Store};

/// Places where a test can make a commit or an uncommit stop, as if the process were killed
/// there. See [`Store::inject_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Flush: after the first data file of the batch.
    AfterFirstDataFile,
    /// Flush: after every data file, before the tasks file (the commit point).
    AfterDataFiles,
    /// Uncommit: after saving the intent, before changing any table file.
    AfterUncommitIntent,
    /// Uncommit: after rewriting a batch's tasks file, before its data files.
    AfterUncommitTasksFile,
}

/// When a writer flushes its buffer as one batch.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// The run the batches belong to (see [`crate::new_run_id`]); part of every batch id.
    pub run_id: String,
    /// Tells apart writers of one run (process and thread index, e.g. `p3-w1`); part of the
    /// batch ids. A random suffix keeps them unique even when two writers share a tag.
    pub writer_tag: String,
    /// Flush when this many tasks are buffered.
    pub max_tasks: usize,
    /// Flush when the buffered results reach about this many bytes (uncompressed).
    pub max_bytes: usize,
    /// Flush when the oldest buffered result is this old (checked on `push` and `tick`).
    pub max_age: Duration,
}

impl WriterOptions {
    /// Defaults for a run: 256 tasks, 64 MiB, 30 s.
    pub fn new(run_id: impl Into<String>) -> Self {
        WriterOptions {
            run_id: run_id.into(),
            writer_tag: "w".to_string(),
            max_tasks: 256,
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(30),
        }
    }
}

/// What one flush committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub batch_id: String,
    pub tasks: usize,
    /// Bytes written over all five files.
    pub bytes: usize,
    /// Results dropped instead of committed: their claim is no longer this writer's (a
    /// writer that judged this one dead took the task over) or they were never claimed.
    pub refused: Vec<String>,
}

/// Totals of a writer's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub batches: usize,
    pub tasks: usize,
    pub bytes: usize,
    /// Results refused at commit (see [`BatchReport::refused`]).
    pub refused: usize,
}

/// Buffers [`TaskResult`]s and commits them in batches. One writer per worker thread (or one
/// behind a mutex). Dropping a writer without [`Writer::finish`] loses the buffered results,
/// which is safe: they are not committed, so the next run runs them again.
#[derive(Debug)]
pub struct Writer {
    store: Store,
    opts: WriterOptions,
    nonce: String,
    seq: u64,
    buf: Vec<TaskResult>,
    buf_ids: HashSet<String>,
    buf_bytes: usize,
    oldest: Option<Instant>,
    /// A failed flush's batch id and task count, to retry as they were.
    retry: Option<(String, usize)>,
    /// Task id -> batch, of every task committed before (from the ledger) or by this writer.
    committed: HashMap<String, String>,
    stats: WriterStats,
}

impl Store {
    /// A writer committing into this root. Results for tasks in `ledger` are refused, so a
    /// task cannot be committed twice; pass the ledger read after [`Store::prepare`].
    ///
    /// With a writer session ([`Store::start_session`]), which every run with other
    /// writers on the root needs: batch ids start with the session's lease id, only tasks
    /// this writer has claimed ([`Store::claim`]) and still holds are committed (the others
    /// are dropped and reported in [`BatchReport::refused`]), and nothing is committed once
    /// the lease could have expired. Without one, the writer assumes it is alone.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a run id or writer tag with other characters than
    /// letters, digits, '-', '_' and '.'.
    pub fn writer(&self, opts: WriterOptions, ledger: &Ledger) -> Result<Writer> {
        for (what, s) in [("run id", &opts.run_id), ("writer tag", &opts.writer_tag)] {
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(StoreError::invalid(
                    "tasks",
                    what,
                    format!("{s:?}: use letters, digits, '-', '_' or '.' only"),
                ));
            }
        }
        Ok(Writer {
            store: self.clone(),
            nonce: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            seq: 0,
            buf: Vec::new(),
            buf_ids: HashSet::new(),
            buf_bytes: 0,
            oldest: None,
            retry: None,
            committed: ledger
                .iter()
                .map(|(id, c)| (id.clone(), c.batch_id.clone()))
                .collect(),
            stats: WriterStats::default(),
            opts: WriterOptions {
                max_tasks: opts.max_tasks.max(1),
                ..opts
            },
        })
    }
}

impl Writer {
    /// Buffers one result; flushes if a limit is reached. Returns the flushed batch, if any.
    /// Refuses a task already committed or already buffered.
    pub fn push(&mut self, mut result: TaskResult) -> Result<Option<BatchReport>> {
        result.normalize()?;
        let id = &result.task.task_id;
        if let Some(b) = self.committed.get(id) {
            return Err(StoreError::AlreadyCommitted {
                task_id: id.clone(),
                batch_id: b.clone(),
            });
        }
        if !self.buf_ids.insert(id.clone()) {
            return Err(StoreError::AlreadyCommitted {
                task_id: id.clone(),
                batch_id: "(this writer's buffer)".to_string(),
            });
        }
        self.buf_bytes += result.approx_bytes();
        self.buf.push(result);
        self.oldest.get_or_insert_with(Instant::now);
        self.tick()
    }

    /// Flushes if a limit is reached, the age limit included: call it now and then from an
    /// idle worker so results do not wait for the next push.
    pub fn tick(&mut self) -> Result<Option<BatchReport>> {
        let due = self.buf.len() >= self.opts.max_tasks
            || self.buf_bytes >= self.opts.max_bytes
            || self
                .oldest
                .is_some_and(|t| t.elapsed() >= self.opts.max_age);
        if due {
            self.flush()
        } else {
            Ok(None)
        }
    }

    /// Number of buffered, uncommitted results.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Commits the buffered results as one batch now (nothing to do when empty).
    ///
    /// On error the results stay buffered and the next flush retries the same results under
    /// the same batch id: a PUT whose answer was lost may have committed, and rewriting the
    /// same files is harmless where committing them again under a new id would not be.
    pub fn flush(&mut self) -> Result<Option<BatchReport>> {
        let r = self.flush_batch();
        match (r, self.store.current_session()) {
            (Err(e), Some(s)) => Err(s.explain(e)),
            (r, _) => r,
        }
    }

    fn flush_batch(&mut self) -> Result<Option<BatchReport>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let session = self.store.current_session();
        let (batch_id, mut n) = match self.retry.take() {
            Some(r) => r,
            None => {
                self.seq += 1;
                let id = match &session {
                    Some(s) => format!("{}-{:05}", s.info.lease_id, self.seq),
                    None => format!(
                        "{}-{}-{}-{:05}",
                        self.opts.run_id, self.opts.writer_tag, self.nonce, self.seq
                    ),
                };
                (id, self.buf.len())
            }
        };
        let mut refused = Vec::new();
        if let Some(s) = &session {
            if let Err(e) = s.check() {
                self.retry = Some((batch_id, n));
                return Err(e);
            }
            let ids: Vec<String> = self.buf[..n]
                .iter()
                .map(|r| r.task.task_id.clone())
                .collect();
            let store = self.store.clone();
            refused = match store.block_on(store.lost_claims(s, &ids)) {
                Ok(r) => r,
                Err(e) => {
                    self.retry = Some((batch_id, n));
                    return Err(e);
                }
            };
            if !refused.is_empty() {
                s.forget(&refused);
                tracing::warn!(
                    "{} result(s) not committed: their claim is no longer this writer's ({})",
                    refused.len(),
                    refused.join(", ")
                );
                let gone: HashSet<&String> = refused.iter().collect();
                let mut kept = Vec::with_capacity(self.buf.len());
                for (i, r) in self.buf.drain(..).enumerate() {
                    if i < n && gone.contains(&r.task.task_id) {
                        self.buf_ids.remove(&r.task.task_id);
                        self.buf_bytes = self.buf_bytes.saturating_sub(r.approx_bytes());
                    } else {
                        kept.push(r);
                    }
                }
                self.buf = kept;
                n -= refused.len();
                self.stats.refused += refused.len();
            }
            let ids: Vec<String> = self.buf[..n]
                .iter()
                .map(|r| r.task.task_id.clone())
                .collect();
            s.mark(&ids, crate::session::HeldState::Flushing);
        }
        if n == 0 {
            self.oldest = (!self.buf.is_empty()).then(Instant::now);
            return Ok(Some(BatchReport {
                batch_id,
                tasks: 0,
                bytes: 0,
                refused,
            }));
        }
        for r in &mut self.buf[..n] {
            r.task.run_id = self.opts.run_id.clone();
            r.task.batch_id = batch_id.clone();
        }
        let files = encode_batch(&self.buf[..n])?;
        let store = self.store.clone();
        let bytes = match store.block_on(commit(&store, &batch_id, files, session.as_deref())) {
            Ok(b) => b,
            Err(e) => {
                self.retry = Some((batch_id, n));
                return Err(e);
            }
        };
        let mut ids = Vec::with_capacity(n);
        for r in self.buf.drain(..n) {
            self.buf_ids.remove(&r.task.task_id);
            self.buf_bytes = self.buf_bytes.saturating_sub(r.approx_bytes());
            self.committed
                .insert(r.task.task_id.clone(), batch_id.clone());
            ids.push((r.task.task_id, r.task.status));
        }
        if let Some(s) = &session {
            let names: Vec<String> = ids.iter().map(|(t, _)| t.clone()).collect();
            s.mark(&names, crate::session::HeldState::Committed);
            let mut view = s.view.lock().unwrap();
            for (t, status) in ids {
                view.ledger.insert(
                    t,
                    batch_id.clone(),
                    crate::ledger::Committed {
                        status,
                        batch_id: batch_id.clone(),
                        run_id: self.opts.run_id.clone(),
                    },
                );
            }
            view.files
                .insert(store.table_file(Table::Tasks, &batch_id).to_string());
        }
        self.oldest = (!self.buf.is_empty()).then(Instant::now);
        self.stats.batches += 1;
        self.stats.tasks += n;
        self.stats.bytes += bytes;
        Ok(Some(BatchReport {
            batch_id,
            tasks: n,
            bytes,
            refused,
        }))
    }

    /// Flushes what is left and returns the totals.
    pub fn finish(mut self) -> Result<WriterStats> {
        self.flush()?;
        Ok(self.stats)
    }

    /// Totals so far.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

/// The five Parquet files of a batch, `tasks` last.
fn encode_batch(buf: &[TaskResult]) -> Result<Vec<(Table, Vec<u8>)>> {
    let tasks: Vec<_> = buf.iter().map(|r| r.task.clone()).collect();
    let losses: Vec<_> = buf.iter().flat_map(|r| r.losses.iter().cloned()).collect();
    let eigen: Vec<_> = buf.iter().flat_map(|r| r.eigen.iter().cloned()).collect();
    let images: Vec<_> = buf.iter().flat_map(|r| r.images.iter().cloned()).collect();
    let scores: Vec<_> = buf.iter().flat_map(|r| r.scores.iter().cloned()).collect();
    Ok(vec![
        (Table::Losses, encode_parquet(&encode::losses(&losses)?)?),
        (Table::Eigen, encode_parquet(&encode::eigen(&eigen)?)?),
        (Table::Images, encode_parquet(&encode::images(&images)?)?),
        (Table::Scores, encode_parquet(&encode::scores(&scores)?)?),
        (Table::Tasks, encode_parquet(&encode::tasks(&tasks)?)?),
    ])
}

/// Writes the data files, then the tasks file: the commit point. A failure (or a kill)
/// before the tasks file leaves orphan data files, which the next recovery deletes. With a
/// session, the tasks file is written only while the lease is valid, and must land before
/// the lease's commit window closes (see `PROTOCOL.md`, "Leases").
async fn commit(
    store: &Store,
    batch_id: &str,
    files: Vec<(Table, Vec<u8>)>,
    session: Option<&crate::session::Session>,
) -> Result<usize> {
    let mut bytes = 0;
    for (i, (table, data)) in files.into_iter().enumerate() {
        let path = store.table_file(table, batch_id);
        bytes += data.len();
        if table == Table::Tasks {
            store.check_fault(FaultPoint::AfterDataFiles)?;
            if let Some(s) = session {
                let (guard, remaining) = s.begin_commit()?;
                crate::lease::within(
                    remaining,
                    "committing a batch",
                    store.put_atomic_fenced(&path, data, Some(&s.info.lease_id)),
                )
                .await?;
                guard.landed();
                continue;
            }
        }
        store.put_atomic(&path, data).await?;
        if i == 0 {
            store.check_fault(FaultPoint::AfterFirstDataFile)?;
        }
    }
    Ok(bytes)
}
