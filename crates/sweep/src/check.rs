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
use crate::error::{Location, SweepError};
use crate::expand::ShardScheme;
use crate::plan::{CheckScope, Fail, Plan};
use crate::values::{dotted_base, Item};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use synthsweep_core::Role;

/// The most tasks one check ([`Plan::check`]: `plan`, a whole `run`, or one shard's run)
/// takes on: 2^28, a few minutes and a few GB. [`crate::axes`] bounds `repeats` at 2^24.
pub(crate) const MAX_CHECKED: u64 = 1 << 28;

impl Plan {
    /// Checks every task of `scope` (parameters and the rules relating them, model/metric
    /// against each image's shape, pair shapes, images against `allowed_range`, and that no
    /// two of them are the same task) and returns how many were checked.
    ///
    /// Two tasks are compared by a hash of what their ids are rendered from; only when two
    /// hashes meet are the two ids rendered (so the check holds a `u64` per task while it
    /// runs, nothing after).
    ///
    /// # Errors
    /// A scope of more than [`MAX_CHECKED`] tasks, before any is checked (naming the longest
    /// axis); the first task that fails, as [`SweepError::Spec`] at the spec value to blame, with
    /// the task's index and coordinates in the message; two tasks with one id (both named,
    /// with the values that differ only in spelling); a shard that does not exist.
    pub fn check(&self, scope: CheckScope) -> Result<u64, SweepError> {
        if scope == CheckScope::Values {
            return Ok(0);
        }
        self.check_scope_size(scope)?;
        let mut seen: HashSet<u64, BuildHasherDefault<KeyHasher>> = HashSet::default();
        let mut checked = 0;
        for index in self.scope_indices(scope)? {
            let rows = self.rows_of(index);
            let parts = self
                .parts(&rows)
                .map_err(|fail| self.check_error(index, &rows, fail))?;
            let key = parts.identity_key();
            if !seen.insert(key) {
                self.find_twin(scope, index, &rows, key)?;
            }
            checked += 1;
        }
        Ok(checked)
    }

    /// Refuses a scope of more than [`MAX_CHECKED`] tasks before checking any: checking holds
    /// a hash per task and takes about a microsecond or two per task, so a larger scope
    /// would run for hours and fail for memory. The error names the sweep's longest axis and
    /// how many shards would each be small enough.
    fn check_scope_size(&self, scope: CheckScope) -> Result<(), SweepError> {
        let n = match scope {
            // A shard that does not exist is refused by `scope_indices`, saying so.
            CheckScope::Shard { index, count } if count == 0 || index >= count => return Ok(()),
            CheckScope::Shard { count, .. } => self.len().div_ceil(count),
            _ => self.len(),
        };
        if n <= MAX_CHECKED {
            return Ok(());
        }
        let groups = &self.spec().groups;
        let Some(longest) = groups.iter().max_by_key(|g| g.len()) else {
            return Ok(());
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

    /// An earlier task of `scope` whose hash is `key`: an error if it is the same task as
    /// `index` (same id), nothing if the hashes met by chance.
    fn find_twin(
        &self,
        scope: CheckScope,
        index: u64,
        rows: &[usize],
        key: u64,
    ) -> Result<(), SweepError> {
        let task = self
            .build(index, rows)
            .map_err(|f| self.check_error(index, rows, f))?;
        for other in self.scope_indices(scope)?.take_while(|&i| i < index) {
            let other_rows = self.rows_of(other);
            let same_key = self
                .parts(&other_rows)
                .is_ok_and(|p| p.identity_key() == key);
            if !same_key {
                continue;
            }
            let twin = self
                .build(other, &other_rows)
                .map_err(|f| self.check_error(other, &other_rows, f))?;
            if twin.id() == task.id() {
                return Err(self.twin_error((other, &other_rows), (index, rows), task.short_id()));
            }
        }
        Ok(())
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

/// The keys of [`Plan::check`] are hashes already: a set of them needs no second hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
