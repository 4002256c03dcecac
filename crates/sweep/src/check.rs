//! Checking tasks one by one before anything runs: every task of the plan (or of one shard)
//! is resolved, typed and checked against its images, and no two tasks may share an id.
//! Distinct values are checked once (the caches of `build`), so a task costs a few lookups
//! and a hash: the million-task test of `tests/expand.rs` plans, checking every task, in a
//! few seconds.
//!
//! Two values of one axis are compared by what a task id knows of them, not by how they
//! are spelled: an image by its file name and content digest, a model/metric spec as
//! resolved (a TorchScript model by its file's name and digest), a `model.path` override by
//! the file it names. `images/a.pgm` and a copy `a.pgm` with the same bytes, or `m.pt` and
//! `./m.pt`, are one value listed twice: refused when planning, naming the axis and both
//! spellings, whatever the other axes and the exclusions are.
use crate::build::Parts;
use crate::error::{Location, SweepError};
use crate::expand::ShardScheme;
use crate::plan::{CheckScope, Fail, Plan};
use crate::values::{dotted_base, Item};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use synthsweep_core::Role;

/// The most tasks one check ([`Plan::check`]: `plan`, a whole `run`, or one shard's run)
/// takes on: 2^28. Memory does not bound it (the check holds at most [`KEY_BUFFER`] hashes,
/// spilling the rest to a scratch file); time and scratch space do: about a microsecond or
/// two per task (2^28 is several minutes) and 16 bytes of scratch file per task (4 GiB).
/// [`crate::axes`] bounds `repeats` at 2^24.
pub(crate) const MAX_CHECKED: u64 = 1 << 28;

/// How many `(hash, index)` pairs (16 bytes each, 64 MiB in all) the duplicate-id check
/// holds in memory; when a scope has more tasks, each full buffer is sorted and written to
/// an unnamed scratch file in the temporary directory (`TMPDIR`), and the sorted runs are
/// merged at the end.
pub(crate) const KEY_BUFFER: usize = 1 << 22;

/// How often a long check logs how far it is.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// One task's identity hash and its index in the plan.
type Entry = (u64, u64);

impl Plan {
    /// Checks every task of `scope` (parameters and the rules relating them, model/metric
    /// against each image's shape, pair shapes, images against `allowed_range`, and that no
    /// two of them are the same task) and returns how many were checked.
    ///
    /// Two tasks are compared by a hash of what their ids are rendered from; only when two
    /// hashes meet are the two ids rendered. The hashes (with the tasks' indices) are held
    /// in a buffer of at most [`KEY_BUFFER`] entries, sorted and spilled to a scratch file in
    /// `TMPDIR` when it fills (deleted when the check ends, also on an error), and the
    /// sorted runs merged: memory does not grow with the number of tasks.
    ///
    /// # Errors
    /// A scope of more than [`MAX_CHECKED`] tasks, before any is checked (naming the longest
    /// axis); the first task that fails, as [`SweepError::Spec`] at the spec value to blame, with
    /// the task's index and coordinates in the message; two tasks with one id (both named,
    /// with the values that differ only in spelling: the first such task in plan order, with
    /// the first earlier task it repeats); a shard that does not exist; the scratch file
    /// failing ([`SweepError::Scratch`]).
    pub fn check(&self, scope: CheckScope) -> Result<u64, SweepError> {
        self.check_with(scope, KEY_BUFFER, Parts::identity_key)
    }

    /// [`Plan::check`] with the buffer's size and the identity hash given (tests spill with
    /// a tiny buffer and make hashes collide).
    pub(crate) fn check_with(
        &self,
        scope: CheckScope,
        buffer: usize,
        key_of: impl Fn(&Parts) -> u64,
    ) -> Result<u64, SweepError> {
        if scope == CheckScope::Values {
            return Ok(0);
        }
        let total = self.check_scope_size(scope)?;
        let mut keys = KeyRuns::new(buffer);
        let mut checked = 0;
        // A long check says how far it is (about every 10 s), as the rest of the program
        // logs: checking a shard of 10^8 tasks takes minutes.
        let mut said = std::time::Instant::now();
        for index in self.scope_indices(scope)? {
            if checked % 65_536 == 65_535 && said.elapsed() >= PROGRESS_EVERY {
                said = std::time::Instant::now();
                tracing::info!(
                    "checking the tasks: {} of {total} ({:.0}%)",
                    checked + 1,
                    100.0 * (checked + 1) as f64 / total.max(1) as f64
                );
            }
            let rows = self.rows_of(index);
            let parts = match self.parts(&rows) {
                Ok(parts) => parts,
                Err(fail) => {
                    // A duplicate among the tasks before this one is the first error.
                    self.report_twins(keys)?;
                    return Err(self.check_error(index, &rows, fail));
                }
            };
            keys.push((key_of(&parts), index))?;
            checked += 1;
        }
        self.report_twins(keys)?;
        Ok(checked)
    }

    /// Goes through the hashes in order, and among the tasks whose hashes meet finds the
    /// first (in plan order) with the same id as an earlier one: that pair is the error.
    fn report_twins(&self, keys: KeyRuns) -> Result<(), SweepError> {
        // (later index, earlier index, short id) of the first duplicate found so far.
        let mut best: Option<(u64, u64, String)> = None;
        let mut group: Vec<u64> = Vec::new();
        let mut group_key = None;
        let mut flush = |group: &mut Vec<u64>| -> Result<(), SweepError> {
            if group.len() > 1 {
                self.twins_in(group, &mut best)?;
            }
            group.clear();
            Ok(())
        };
        for entry in keys.sorted()? {
            let (key, index) = entry?;
            if group_key != Some(key) {
                flush(&mut group)?;
                group_key = Some(key);
            }
            group.push(index);
        }
        flush(&mut group)?;
        match best {
            None => Ok(()),
            Some((later, earlier, id)) => {
                let (a, b) = (self.rows_of(earlier), self.rows_of(later));
                Err(self.twin_error((earlier, &a), (later, &b), &id))
            }
        }
    }

    /// Tasks with one hash, in plan order: the first that has the same id as an earlier one
    /// of them, if it comes before `best`, replaces it (hashes that met by chance are not
    /// an error).
    fn twins_in(
        &self,
        group: &[u64],
        best: &mut Option<(u64, u64, String)>,
    ) -> Result<(), SweepError> {
        let mut first_of: HashMap<String, u64> = HashMap::new();
        for &index in group {
            if best.as_ref().is_some_and(|(b, _, _)| index >= *b) {
                break;
            }
            let rows = self.rows_of(index);
            let task = self
                .build(index, &rows)
                .map_err(|f| self.check_error(index, &rows, f))?;
            match first_of.get(task.id()) {
                Some(&earlier) => {
                    *best = Some((index, earlier, task.short_id().to_string()));
                    break;
                }
                None => {
                    first_of.insert(task.id().to_string(), index);
                }
            }
        }
        Ok(())
    }

    /// Refuses a scope of more than [`MAX_CHECKED`] tasks before checking any: checking takes
    /// about a microsecond or two per task and 16 bytes of scratch file per task past
    /// [`KEY_BUFFER`], so a larger scope would run for hours and fill `TMPDIR` with
    /// gigabytes. The error names the sweep's longest axis and
    /// how many shards would each be small enough. Returns the scope's number of tasks (at
    /// most: a shard's count rounded up; 0 for a shard that does not exist).
    fn check_scope_size(&self, scope: CheckScope) -> Result<u64, SweepError> {
        let n = match scope {
            // A shard that does not exist is refused by `scope_indices`, saying so.
            CheckScope::Shard { index, count } if count == 0 || index >= count => return Ok(0),
            CheckScope::Shard { count, .. } => self.len().div_ceil(count),
            _ => self.len(),
        };
        if n <= MAX_CHECKED {
            return Ok(n);
        }
        let groups = &self.spec().groups;
        let Some(longest) = groups.iter().max_by_key(|g| g.len()) else {
            return Ok(n);
        };
        let what = match scope {
            CheckScope::Shard { index, count } => {
                format!(
                    "shard {index}/{count} has {n} of the sweep's {} tasks",
                    self.len()
                )
            }
            _ => format!("the sweep has {n} tasks"),
        };
        Err(SweepError::Spec {
            at: longest.at.clone(),
            message: format!(
                "{what} ({} values on its longest axis, {}), and at most {MAX_CHECKED} are \
                 checked before one process runs them; split the study into several sweeps, or \
                 run it in shards of at most that many (`run --shard i/n` with n >= {})",
                longest.len(),
                longest.label,
                self.len().div_ceil(MAX_CHECKED)
            ),
        })
    }

    fn scope_indices(
        &self,
        scope: CheckScope,
    ) -> Result<Box<dyn Iterator<Item = u64> + '_>, SweepError> {
        Ok(match scope {
            CheckScope::All => Box::new(self.indices()),
            CheckScope::Shard { index, count } => {
                self.shard_indices(index, count, ShardScheme::Strided)?
            }
            CheckScope::Values => Box::new(std::iter::empty()),
        })
    }

    /// Two grid positions with one task id: blamed on the later value of the first axis
    /// that differs, saying what makes the values one.
    fn twin_error(&self, first: (u64, &[usize]), second: (u64, &[usize]), id: &str) -> SweepError {
        let mut at = None;
        let mut why = Vec::new();
        for (g, group) in self.spec.groups.iter().enumerate() {
            let (a, b) = (first.1[g], second.1[g]);
            if a == b {
                continue;
            }
            for (c, name) in group.columns.iter().enumerate() {
                let (ia, ib) = (group.item(a, c), group.item(b, c));
                if ia.canon == ib.canon {
                    continue;
                }
                at.get_or_insert_with(|| ib.at.clone());
                let (ka, what) = self.identity_of(name, ia);
                let (kb, _) = self.identity_of(name, ib);
                if ka == kb {
                    if let Some(what) = what {
                        why.push(format!(
                            "`{name}` {} and {} are {what}",
                            ia.short(),
                            ib.short()
                        ));
                    }
                }
            }
        }
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {}", why.join("; "))
        };
        SweepError::Spec {
            at: at.unwrap_or_else(|| Location {
                file: self.spec.src.file.clone(),
                key: String::new(),
                line: None,
            }),
            message: format!(
                "tasks {} ({}) and {} ({}) are one task (id {id}){why}; the tasks would repeat",
                first.0,
                self.coords_text(first.1),
                second.0,
                self.coords_text(second.1)
            ),
        }
    }

    /// What a task id knows of the value `item` of column `name`, and, when that is not its
    /// spelling, what it is in words: an image by its file name and content digest, a
    /// model/metric spec as resolved, a `model.path` override by the file it names.
    pub(crate) fn identity_of(&self, name: &str, item: &Item) -> (String, Option<String>) {
        let role = if name.contains('.') {
            None
        } else {
            Role::from_name(name)
        };
        match role {
            Some(r) if r.is_image() => {
                if let Some((img, _)) = &self.image_slots[item.slot] {
                    return (
                        format!("file\u{1}{}\u{1}{}", img.name, img.sha256),
                        Some(same_file(&img.name, &img.sha256)),
                    );
                }
            }
            // A spec with `name.field` overrides somewhere is resolved with them, per task:
            // the check of every task compares those.
            Some(r) if r.is_spec() && !self.has_overrides(name) => {
                let resolved = self.spec_slots[item.slot]
                    .get_or_init(|| self.resolve_cached(r, &item.value, &item.canon));
                if let Ok(s) = resolved {
                    return (
                        s.canon.clone(),
                        Some(format!("one {} once resolved: {}", r.spec_kind(), s.canon)),
                    );
                }
            }
            None if name.ends_with(".path")
                && dotted_base(name)
                    .and_then(Role::from_name)
                    .is_some_and(|r| r.is_spec()) =>
            {
                if let Some(path) = item.value.as_str() {
                    let path = std::path::Path::new(path);
                    if let (Ok(bytes), Some(file)) = (std::fs::read(path), path.file_name()) {
                        let file = file.to_string_lossy();
                        let sha = crate::canonical::sha256_hex(&bytes);
                        return (
                            format!("file\u{1}{file}\u{1}{sha}"),
                            Some(same_file(&file, &sha)),
                        );
                    }
                }
            }
            _ => {}
        }
        (item.canon.clone(), None)
    }

    /// Whether some `name.field = ...` sets a field of `name` (in `[params]`, an axis or a
    /// `[[when]]`).
    fn has_overrides(&self, name: &str) -> bool {
        let spec = &self.spec;
        spec.fixed
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(
                spec.groups
                    .iter()
                    .flat_map(|g| g.columns.iter().map(String::as_str)),
            )
            .chain(
                spec.whens
                    .iter()
                    .flat_map(|w| w.set.iter().map(|(n, _)| n.as_str())),
            )
            .any(|n| dotted_base(n) == Some(name))
    }

    /// Two rows of one axis that a task id cannot tell apart (see the module docs): an
    /// error naming the axis and both spellings. Seed-only axes are distinct by value.
    pub(crate) fn check_axis_identities(&self) -> Result<(), SweepError> {
        for group in &self.spec.groups {
            if group.seeds.is_some() {
                continue;
            }
            let mut seen: HashMap<Vec<String>, usize> = HashMap::new();
            for (r, row) in group.rows.iter().enumerate() {
                let ids: Vec<(String, Option<String>)> = group
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(name, item)| self.identity_of(name, item))
                    .collect();
                let key: Vec<String> = ids.iter().map(|(k, _)| k.clone()).collect();
                let Some(&first) = seen.get(&key) else {
                    seen.insert(key, r);
                    continue;
                };
                let other = &group.rows[first];
                let shown =
                    |row: &[Item]| row.iter().map(Item::short).collect::<Vec<_>>().join(", ");
                let why: Vec<String> = ids.into_iter().filter_map(|(_, w)| w).collect();
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                };
                let first_at = &other[0].at;
                let mut at = row[0].at.clone();
                if group.columns.len() > 1 {
                    at.key = format!("{} row {r}", group.label);
                }
                return Err(SweepError::Spec {
                    at,
                    message: format!(
                        "{} and {} (at {}{}) are one value to a task id{why}: listed twice in \
                         {}, the tasks would repeat",
                        shown(row),
                        shown(other),
                        first_at.key,
                        first_at
                            .line
                            .map(|(l, _)| format!(", line {l}"))
                            .unwrap_or_default(),
                        group.label
                    ),
                });
            }
        }
        Ok(())
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

fn same_file(name: &str, sha256: &str) -> String {
    format!(
        "the file {name}, sha256 {}…: a task id knows a file by its name and content",
        &sha256[..sha256.len().min(12)]
    )
}

/// The `(hash, index)` pairs of a check: a buffer, and the sorted runs spilled from it.
struct KeyRuns {
    buffer: Vec<Entry>,
    capacity: usize,
    runs: Vec<std::fs::File>,
}

impl KeyRuns {
    fn new(capacity: usize) -> Self {
        Self {
            buffer: Vec::new(),
            capacity: capacity.max(1),
            runs: Vec::new(),
        }
    }

    fn push(&mut self, entry: Entry) -> Result<(), SweepError> {
        self.buffer.push(entry);
        if self.buffer.len() >= self.capacity {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the buffer and writes it to a new unnamed scratch file (removed by the system
    /// when it is closed).
    fn spill(&mut self) -> Result<(), SweepError> {
        self.buffer.sort_unstable();
        let file = tempfile::tempfile().map_err(scratch_error)?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        for (key, index) in self.buffer.drain(..) {
            out.write_all(&key.to_le_bytes()).map_err(scratch_error)?;
            out.write_all(&index.to_le_bytes()).map_err(scratch_error)?;
        }
        let mut file = out
            .into_inner()
            .map_err(|e| scratch_error(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(scratch_error)?;
        self.runs.push(file);
        Ok(())
    }

    /// Every pair, in order of hash and then index: the buffer sorted when nothing was
    /// spilled, else a k-way merge of the runs.
    fn sorted(mut self) -> Result<Box<dyn Iterator<Item = Result<Entry, SweepError>>>, SweepError> {
        if self.runs.is_empty() {
            self.buffer.sort_unstable();
            return Ok(Box::new(self.buffer.into_iter().map(Ok)));
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        self.buffer = Vec::new();
        let mut readers: Vec<BufReader<std::fs::File>> = self
            .runs
            .into_iter()
            .map(|f| BufReader::with_capacity(1 << 16, f))
            .collect();
        let mut heap = BinaryHeap::new();
        for (r, reader) in readers.iter_mut().enumerate() {
            if let Some(e) = read_entry(reader)? {
                heap.push(Reverse((e, r)));
            }
        }
        Ok(Box::new(std::iter::from_fn(move || {
            let Reverse((entry, r)) = heap.pop()?;
            match read_entry(&mut readers[r]) {
                Ok(Some(next)) => heap.push(Reverse((next, r))),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            Some(Ok(entry))
        })))
    }
}

fn read_entry(reader: &mut impl Read) -> Result<Option<Entry>, SweepError> {
    let mut bytes = [0u8; 16];
    match reader.read_exact(&mut bytes) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(scratch_error(e)),
    }
    let (key, index) = bytes.split_at(8);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    Ok(Some((word(key), word(index))))
}

fn scratch_error(source: std::io::Error) -> SweepError {
    SweepError::Scratch {
        dir: std::env::temp_dir(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NoopResolver, PlanOptions, SweepSpec};
    use std::sync::Arc;

    /// Nine eigendistortion tasks (`image` varies fastest); with `exact` for `images/b.pgm`,
    /// which ignores `k`, tasks 1, 4 and 7 are one task.
    fn plan(dir: &tempfile::TempDir, method_for_b: &str) -> Plan {
        plan_with(dir, method_for_b, 2)
    }

    /// [`plan`] with `images/c.pgm` of `c_side` x `c_side` pixels.
    fn plan_with(dir: &tempfile::TempDir, method_for_b: &str, c_side: usize) -> Plan {
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            let side = if *n == "c" { c_side } else { 2 };
            let mut bytes = format!("P5\n{side} {side}\n255\n").into_bytes();
            bytes.extend((0..side * side).map(|p| (10 * i + p) as u8));
            std::fs::write(dir.path().join(format!("images/{n}.pgm")), bytes).unwrap();
        }
        let text = format!(
            "name = \"t\"\nsynth = \"eigendistortion\"\n[params]\nmodel = \"gaussian\"\n[grid]\n\
             k = [1, 2, 3]\nimage = [\"images/a.pgm\", \"images/b.pgm\", \"images/c.pgm\"]\n\
             [[when]]\nmatch = {{ image = \"images/b.pgm\" }}\nset = {{ method = \"{method_for_b}\" }}\n"
        );
        let options = PlanOptions {
            check: CheckScope::Values,
        };
        SweepSpec::from_str(&text, dir.path().join("spec.toml"))
            .unwrap()
            .plan_with(Arc::new(NoopResolver), options)
            .unwrap()
    }

    /// The duplicate found in sorted runs spilled to scratch files (a buffer of 2: tasks 1
    /// and 4 are in different runs) is the one found in memory, named the same way; and
    /// hashes that all meet by chance (one hash for every task) are no error, while real
    /// duplicates among them still are.
    #[test]
    fn spilled_runs_and_colliding_hashes_find_the_same_first_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let dup = plan(&dir, "exact");
        let in_memory = dup.check(CheckScope::All).unwrap_err().to_string();
        assert!(
            in_memory.contains(
                "tasks 1 (k=1, image=images/b.pgm) and 4 (k=2, image=images/b.pgm) are one task"
            ),
            "{in_memory}"
        );
        for buffer in [1, 2, 3, 4] {
            let spilled = dup
                .check_with(CheckScope::All, buffer, Parts::identity_key)
                .unwrap_err()
                .to_string();
            assert_eq!(spilled, in_memory, "buffer {buffer}");
            let colliding = dup
                .check_with(CheckScope::All, buffer, |_| 7)
                .unwrap_err()
                .to_string();
            assert_eq!(colliding, in_memory, "buffer {buffer}, one hash");
        }
        // One shard's tasks (1, 4, 7 are shard 1 of 3) the same way.
        let shard = CheckScope::Shard { index: 1, count: 3 };
        let e = dup.check_with(shard, 1, |_| 7).unwrap_err().to_string();
        assert!(e.contains("tasks 1 (") && e.contains("and 4 ("), "{e}");
        assert_eq!(
            dup.check_with(CheckScope::Shard { index: 0, count: 3 }, 1, |_| 7)
                .unwrap(),
            3
        );

        let distinct = plan(&dir, "power");
        assert_eq!(distinct.check(CheckScope::All).unwrap(), 9);
        for buffer in [1, 2, 4] {
            assert_eq!(
                distinct.check_with(CheckScope::All, buffer, |_| 7).unwrap(),
                9
            );
            assert_eq!(
                distinct
                    .check_with(CheckScope::All, buffer, Parts::identity_key)
                    .unwrap(),
                9
            );
        }
    }

    /// A task that fails its check after the first duplicate: the duplicate, the earlier
    /// error, is reported, as when tasks were checked one by one; without the duplicate,
    /// the failing task is.
    #[test]
    fn the_earlier_of_a_failing_task_and_a_duplicate_is_the_error() {
        let dir = tempfile::tempdir().unwrap();
        // `c.pgm` of 1x1 pixel: `k = 2` (task 5) asks for more than its one value, after
        // task 4 repeats task 1 (each value alone is fine in an earlier task).
        for buffer in [2, KEY_BUFFER] {
            let dup = plan_with(&dir, "exact", 1);
            let e = dup
                .check_with(CheckScope::All, buffer, Parts::identity_key)
                .unwrap_err()
                .to_string();
            assert!(e.contains("tasks 1 (") && e.contains("are one task"), "{e}");
            let distinct = plan_with(&dir, "power", 1);
            let e = distinct
                .check_with(CheckScope::All, buffer, Parts::identity_key)
                .unwrap_err()
                .to_string();
            assert!(e.contains("task 5: k=2, image=images/c.pgm"), "{e}");
        }
    }
}
