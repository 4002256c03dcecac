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
use crate::lease::CLOCK;
use crate::rows::TaskStatus;
use crate::schema::Table;
use crate::store::{encode_parquet, Store, STAGING, TXN};
use crate::writer::FaultPoint;

/// What [`Store::recover`] cleaned up, and what it left to live writers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Uncommits a dead process had started, now finished.
    pub intents_replayed: usize,
    /// Data files of batches whose tasks file was never written by their (dead) writer,
    /// deleted.
    pub orphan_files_deleted: Vec<String>,
    /// Temporary files under `_staging/` of dead writers deleted.
    pub staging_files_deleted: usize,
    /// Tasks that were committed in more than one batch, now kept in one only.
    pub duplicates_resolved: usize,
    /// Expired leases deleted (their writers' leftovers were cleaned up first).
    pub leases_expired: Vec<String>,
    /// Claim objects of committed tasks deleted (left by writers that ended together, or
    /// died), when every other live writer was ending.
    pub claims_deleted: usize,
    /// Dead-writer marks (`_dead/<lease>`) of writers no longer alive, ending markers
    /// (`_leases/<lease>.ending`) and clock probes (`_clock/<lease>`) whose lease was gone,
    /// deleted.
    pub marks_deleted: usize,
    /// Files left alone because their writer's lease is alive (in flight, not debris).
    pub spared_live: usize,
}

impl RecoveryReport {
    /// Whether there was nothing to clean up (nothing deleted, replayed or resolved; files
    /// spared because their writer lives do not count).
    pub fn is_clean(&self) -> bool {
        self.intents_replayed == 0
            && self.orphan_files_deleted.is_empty()
            && self.staging_files_deleted == 0
            && self.duplicates_resolved == 0
            && self.leases_expired.is_empty()
            && self.claims_deleted == 0
            && self.marks_deleted == 0
    }
}

/// Options of [`Store::recover`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoverOptions {
    /// Also leave files younger than this alone (by the storage's clock). Zero, the
    /// default, is right: files of live writers are spared by their lease anyway.
    pub min_age: Duration,
}

/// An uncommit in progress, saved as `_txn/uncommit-<id>.json` before any file changes, so
/// that a kill in the middle is finished by the next recovery. Batch id -> task ids, and
/// the lease of the writer doing it (recovery replays only a dead writer's intent).
#[derive(Debug, Serialize, Deserialize)]
struct UncommitIntent {
    batches: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    owner: Option<String>,
}

/// The lease id of the writer of a batch: the batch id without its `-<seq>` suffix.
pub(crate) fn batch_owner(batch_id: &str) -> &str {
    batch_id.rsplit_once('-').map_or(batch_id, |(l, _)| l)
}

/// Staging files without a lease (written outside a writer session) are left alone this
/// long: writing one takes milliseconds.
const ANON_STAGING_AGE: Duration = Duration::from_secs(120);

/// The uncommit lock: one uncommit (or duplicate resolution) at a time on a root.
const UNCOMMIT_LOCK: &str = "uncommit";

impl Store {
    /// Cleans up after dead writers, so the dataset shows only committed tasks, and never
    /// touches what a live writer is doing:
    /// 1. finishes uncommits that dead writers had started (`_txn/`);
    /// 2. deletes data files of batches that have no tasks file and whose writer is dead
    ///    (it died before its commit point);
    /// 3. deletes dead writers' temporary files (`_staging/`, local roots);
    /// 4. keeps a task committed twice in one batch only (done over failed, then the
    ///    newest), removing copies of dead writers only;
    /// 5. deletes expired leases.
    ///
    /// A writer is dead when its lease has expired or is gone, judged with the storage's
    /// clock (see `PROTOCOL.md`). Everything it may delete is listed before the leases are,
    /// so a file of a writer that started meanwhile is never taken for debris; the tasks
    /// files are listed after them, so a batch committed by a writer that ended meanwhile
    /// is never taken for an orphan. Safe to run from any number of processes at once,
    /// while other writers run.
    ///
    /// # Errors
    /// [`StoreError::Storage`] when the storage fails; [`StoreError::LeaseLost`] when this
    /// writer's own lease expires in the middle (then it stops cleaning).
    pub fn recover(&self, opts: RecoverOptions) -> Result<RecoveryReport> {
        self.block_on(self.recover_async(opts))
    }

    async fn recover_async(&self, opts: RecoverOptions) -> Result<RecoveryReport> {
        let session = self.current_session();
        let mut report = RecoveryReport::default();
        // 1. What may be deleted, listed before the leases: a file listed belongs to a
        //    writer whose lease existed before they were listed.
        let intents = self.list(&[TXN]).await?;
        let mut data = Vec::new();
        for table in Table::DATA {
            data.extend(self.list(&[table.name()]).await?);
        }
        let staging = self.staging_entries();
        let probe = self.staging_owner();
        let hook = self.inner.before_liveness.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        let live = self.liveness(&probe).await?;
        // The tasks files, listed after the leases: a writer judged dead there commits
        // nothing later, so this listing holds every batch it committed. (Listed before the
        // leases, a writer that committed and ended its session in between was judged dead
        // with its batch missing from the listing, and its committed batch's data files
        // deleted as orphans: tasks rows without their images, losses, scores.)
        let committed = self.committed_batch_ids().await?;
        let now = live.now;
        let old = |t: SystemTime| now.duration_since(t).unwrap_or_default() >= opts.min_age;
        let dead = |owner: &str| !live.is_live(owner) && owner != probe;

        // 2. Uncommits of dead writers, under the uncommit lock.
        let mut replay = Vec::new();
        for f in intents {
            let Some(bytes) = self.get(&f.path).await? else {
                continue;
            };
            let intent: UncommitIntent = serde_json::from_slice(&bytes)?;
            match &intent.owner {
                Some(o) if !dead(o) => report.spared_live += 1,
                _ if old(f.last_modified) => replay.push((f.path, intent)),
                _ => {}
            }
        }
        if !replay.is_empty() {
            let guard = match &session {
                Some(s) => Some(self.lock(s, UNCOMMIT_LOCK).await?),
                None => None,
            };
            for (path, intent) in replay {
                if self.get(&path).await?.is_none() {
                    continue; // replayed by another process meanwhile
                }
                self.apply_uncommit(&intent).await?;
                self.delete(&path).await?;
                report.intents_replayed += 1;
            }
            if let (Some(s), Some(g)) = (&session, guard) {
                self.unlock(s, g).await?;
            }
        }

        // 3. Orphan data files of dead writers; anything else in a table folder.
        for f in data {
            let orphan = match Store::batch_of(&f.path) {
                Some(b) if committed.contains(&b) => false,
                Some(b) if !dead(batch_owner(&b)) => {
                    report.spared_live += 1;
                    false
                }
                Some(_) => true,
                // Not a table file at all: never ours to keep in a table folder.
                None => true,
            };
            if orphan && old(f.last_modified) {
                if let Some(s) = &session {
                    s.check()?;
                }
                self.delete(&f.path).await?;
                report.orphan_files_deleted.push(f.path.to_string());
            }
        }
        report.orphan_files_deleted.sort();

        // 4. Staging files of dead writers (local roots).
        for (owner, path, modified) in staging {
            let age = now.duration_since(modified).unwrap_or_default();
            let gone = match &owner {
                Some(o) if o.starts_with("nolease-") => age >= ANON_STAGING_AGE,
                Some(o) => dead(o),
                None => true,
            };
            let removed = |p: &std::path::Path| {
                if p.is_dir() {
                    std::fs::remove_dir(p).is_ok()
                } else {
                    std::fs::remove_file(p).is_ok()
                }
            };
            let is_dir = path.is_dir();
            if gone && old(modified) && removed(&path) {
                report.staging_files_deleted += 1;
                // The writer's folder when this was its last file (never `_staging/`
                // itself: another writer may be creating its folder in it).
                if let Some(dir) = path.parent().filter(|_| !is_dir) {
                    let _ = std::fs::remove_dir(dir);
                }
            } else if !gone {
                report.spared_live += 1;
            }
        }
        // 4b. object_store's own staging files (`<name>#<digits>`) in the coordination
        //     folders of a local root: a writer killed in the middle of a put (a claim, a
        //     lease renewal) leaves one, which no listing shows (object_store skips them)
        //     and nothing else removes. A put lasts milliseconds; one older than a lease
        //     is debris.
        let lease_len = session
            .as_ref()
            .map_or(crate::lease::LeaseOptions::default().length, |s| {
                s.opts.length
            });
        for (path, modified) in self.interrupted_puts() {
            let age = now.duration_since(modified).unwrap_or_default();
            if age >= lease_len && old(modified) && std::fs::remove_file(&path).is_ok() {
                report.staging_files_deleted += 1;
            }
        }

        // 5. Tasks committed twice: keep one copy; remove only dead writers' copies.
        let ledger = self.ledger_async().await?;
        if !ledger.duplicates.is_empty() {
            let guard = match &session {
                Some(s) => Some(self.lock(s, UNCOMMIT_LOCK).await?),
                None => None,
            };
            let ledger = self.ledger_async().await?;
            let mut intent = UncommitIntent {
                batches: BTreeMap::new(),
                owner: self.lease_id(),
            };
            for (task_id, batches) in &ledger.duplicates {
                let keep = self.preferred_copy(task_id, batches).await?;
                let mut removed = false;
                for b in batches.iter().filter(|b| **b != keep) {
                    if dead(batch_owner(b)) {
                        intent
                            .batches
                            .entry(b.clone())
                            .or_default()
                            .push(task_id.clone());
                        removed = true;
                    }
                }
                report.duplicates_resolved += usize::from(removed);
            }
            self.run_uncommit(intent).await?;
            if let (Some(s), Some(g)) = (&session, guard) {
                self.unlock(s, g).await?;
            }
        }

        // 6. Claims of committed tasks, when no live writer but this one could still claim
        //    a task it does not know to be committed (PROTOCOL.md, "Claims"): the ledger
        //    just read is older than the liveness look made there.
        report.claims_deleted = self.clean_committed_claims(&probe, Some(&ledger)).await?;

        // 7. Expired leases, now that their leftovers are gone, their clock probes and
        //    ending markers; markers whose lease is gone.
        for l in live.leases.values().filter(|l| l.expired) {
            self.delete_coord(&self.path(&[CLOCK, &l.lease_id])).await?;
            self.delete_coord(&self.lease_path(&l.lease_id)).await?;
            self.delete_coord(&self.ending_path(&l.lease_id)).await?;
            report.leases_expired.push(l.lease_id.clone());
        }
        for id in &live.orphan_markers {
            self.delete_coord(&self.ending_path(id)).await?;
            report.marks_deleted += 1;
        }
        // Clock probes whose writer is gone: one a writer stopped past its lease wrote after
        //    its expired lease was deleted (a writer writes its lease before its first probe
        //    and deletes the probe before its lease, so a probe whose lease is absent from a
        //    listing made after the probes were listed has no writer any more); readers'
        //    probes (`nolease-`) a killed reader left, once older than 2 minutes.
        let probes = self.list_coord(&[CLOCK]).await?;
        if !probes.is_empty() {
            let leases: std::collections::HashSet<String> = self
                .list_coord(&[crate::lease::LEASES])
                .await?
                .iter()
                .filter_map(|f| f.path.filename()?.strip_suffix(".json").map(str::to_string))
                .collect();
            for f in probes {
                let Some(id) = f.path.filename() else {
                    continue;
                };
                let age = now.duration_since(f.last_modified).unwrap_or_default();
                let gone = if id.starts_with("nolease-") {
                    age >= ANON_STAGING_AGE
                } else {
                    !leases.contains(id)
                };
                if gone && id != probe {
                    self.delete_coord(&f.path).await?;
                    report.marks_deleted += 1;
                }
            }
        }
        // Dead-writer marks of writers whose lease has expired or is gone: they commit
        // nothing any more, so nothing looks at their mark.
        for f in self.list_coord(&[crate::claims::DEAD]).await? {
            let Some(id) = f.path.filename() else {
                continue;
            };
            if !live.is_live(id) && id != probe {
                self.delete_coord(&f.path).await?;
                report.marks_deleted += 1;
            }
        }
        report.leases_expired.sort();
        Ok(report)
    }

    /// Files under the local staging folder: (owner lease id, when the file is in an
    /// owner's folder; path; modification time). object_store hides its own half-written
    /// files (`name#1`) from listings, so the folder is read directly.
    /// Files named `<name>#<digits>` (object_store's staging of a put on a local file
    /// system) under the coordination folders of a local root, with their modification
    /// times.
    fn interrupted_puts(&self) -> Vec<(std::path::PathBuf, SystemTime)> {
        let Some(dir) = &self.inner.local else {
            return Vec::new();
        };
        let staged = |name: &str| {
            name.split_once('#')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        let mut out = Vec::new();
        let mut stack: Vec<std::path::PathBuf> = [
            crate::claims::CLAIMS,
            crate::claimsets::SETS,
            crate::claims::LOCKS,
            crate::claims::DEAD,
            crate::lease::LEASES,
            crate::lease::CLOCK,
        ]
        .iter()
        .map(|d| dir.join(d))
        .collect();
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if staged(&e.file_name().to_string_lossy()) {
                    if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                        out.push((p, t));
                    }
                }
            }
        }
        out
    }

    fn staging_entries(&self) -> Vec<(Option<String>, std::path::PathBuf, SystemTime)> {
        let Some(dir) = &self.inner.local else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let modified = |p: &std::path::Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        for e in std::fs::read_dir(dir.join(STAGING))
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                let owner = e.file_name().to_string_lossy().to_string();
                let mut empty = true;
                for f in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                    let fp = f.path();
                    let t = modified(&fp);
                    out.push((Some(owner.clone()), fp, t));
                    empty = false;
                }
                // An empty folder (a writer killed before its first staging file, or whose
                // staging another writer deleted when it took its tasks over) is debris too.
                if empty {
                    let t = modified(&p);
                    out.push((Some(owner), p, t));
                }
            } else {
                let t = modified(&p);
                out.push((None, p, t));
            }
        }
        out
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
    /// for re-running chosen tasks. Unknown ids are ignored. Returns how many were
    /// uncommitted.
    ///
    /// Crash-safe: the intent is saved first, the tasks rows go before the data rows, and
    /// [`Store::recover`] finishes an interrupted uncommit. With a writer session, one
    /// uncommit runs at a time on the root (the `_locks/uncommit` lock), and tasks in
    /// batches of live writers are left alone (a live writer may still rewrite its batch
    /// when a commit is retried); they are retried another time.
    ///
    /// # Errors
    /// [`StoreError::Storage`], [`StoreError::LeaseLost`].
    pub fn uncommit(&self, task_ids: &[String]) -> Result<usize> {
        self.block_on(async {
            let session = self.current_session();
            let guard = match &session {
                Some(s) => Some(self.lock(s, UNCOMMIT_LOCK).await?),
                None => None,
            };
            let ledger = self.ledger_async().await?;
            let live = match &session {
                Some(s) => Some(self.liveness(&s.info.lease_id).await?),
                None => None,
            };
            let me = self.lease_id();
            let mut intent = UncommitIntent {
                batches: BTreeMap::new(),
                owner: me.clone(),
            };
            let (mut n, mut busy) = (0, 0);
            for id in task_ids.iter().collect::<BTreeSet<_>>() {
                if let Some(c) = ledger.get(id) {
                    let owner = batch_owner(&c.batch_id);
                    if live.as_ref().is_some_and(|l| l.is_live(owner))
                        && me.as_deref() != Some(owner)
                    {
                        busy += 1;
                        continue;
                    }
                    intent
                        .batches
                        .entry(c.batch_id.clone())
                        .or_default()
                        .push(id.clone());
                    n += 1;
                }
            }
            if busy > 0 {
                tracing::info!(
                    "{busy} task(s) left committed: a live writer committed them just now"
                );
            }
            self.run_uncommit(intent).await?;
            if let (Some(s), Some(g)) = (&session, guard) {
                self.unlock(s, g).await?;
            }
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
        let session = self.current_session();
        for (batch_id, ids) in &intent.batches {
            if let Some(s) = &session {
                s.check()?;
            }
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
