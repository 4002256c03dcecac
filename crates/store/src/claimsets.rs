//! Claim sets: one object claims a group of tasks, `_claimsets/<lease_id>-s<NNNNNN>.json`,
//! so that a writer alone on a root (or beside writers of other tasks: the shards of a job
//! array) pays a few requests per group instead of one per task. A set is published
//! *pending*, then the writer looks at every other claim (the other writers' sets and the
//! per-task claims `_claims/<task>/`), then publishes it *confirmed*, naming the tasks it
//! saw claimed elsewhere as *excluded*: those go through the per-task claims of
//! `claims.rs`. The argument that no two writers hold one task is in `PROTOCOL.md`,
//! "Claims".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::claims::CLAIMS;
use crate::error::{Result, StoreError};
use crate::session::Session;
use crate::store::Store;

/// Folder of the claim sets.
pub(crate) const SETS: &str = "_claimsets";
/// The fewest fresh tasks of a claiming round that are claimed with a set; fewer are
/// claimed one by one (a set costs two writes and two listings, a task claim one write).
pub(crate) const SET_MIN: usize = 8;
/// Requests in flight at once when reading sets.
const IN_FLIGHT: usize = 16;

/// The content of a claim set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ClaimSet {
    /// The writer's lease id.
    pub lease: String,
    /// When it was written (the writer's clock; for people only).
    pub at: String,
    /// False while the writer looks for other claims of these tasks.
    pub confirmed: bool,
    pub tasks: Vec<String>,
    /// Tasks of `tasks` the writer does not hold through this set: claimed elsewhere when
    /// it looked (it then tries their per-task claims), or given back since.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
}

impl ClaimSet {
    pub fn new(lease: &str, tasks: Vec<String>) -> Self {
        ClaimSet {
            lease: lease.to_string(),
            at: crate::runs::now_rfc3339(),
            confirmed: false,
            tasks,
            excluded: Vec::new(),
        }
    }

    /// The tasks this set names and has not excluded: held through it once confirmed,
    /// possibly held while pending.
    pub fn named(&self) -> impl Iterator<Item = &String> {
        let excluded: HashSet<&String> = self.excluded.iter().collect();
        self.tasks.iter().filter(move |t| !excluded.contains(t))
    }
}

/// The name of a writer's set number `seq`.
pub(crate) fn set_name(lease: &str, seq: u32) -> String {
    format!("{lease}-s{seq:06}.json")
}

/// The lease id in a set's name (`None`: not a set's name, e.g. object_store's staging file
/// `<name>#<digits>` of a put in progress).
pub(crate) fn lease_of_set(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".json")?;
    let (lease, seq) = stem.rsplit_once("-s")?;
    (seq.len() == 6 && seq.bytes().all(|b| b.is_ascii_digit()) && !lease.is_empty())
        .then_some(lease)
}

/// One set naming a task: whose, and whether confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mention {
    pub lease: String,
    pub confirmed: bool,
}

/// What a look at the other claims found.
#[derive(Debug, Default)]
pub(crate) struct SetView {
    /// Per task, the sets of other writers that name it (not excluded), live or dead.
    pub mentions: HashMap<String, Vec<Mention>>,
    /// Tasks with a folder of per-task claims (`_claims/<task>/`): a claim, or one being
    /// created or deleted. Only the looks of a set round fill it.
    pub per_task: HashSet<String>,
}

impl SetView {
    pub fn mentions(&self, task: &str) -> &[Mention] {
        self.mentions.get(task).map_or(&[], Vec::as_slice)
    }

    /// Whether a set round must leave `task` to the per-task claims: another set names
    /// it, or it has per-task claims.
    pub fn claimed_elsewhere(&self, task: &str) -> bool {
        self.mentions.contains_key(task) || self.per_task.contains(task)
    }

    /// The writer whose confirmed set holds `task`, if any (at most one: a set round
    /// confirms only tasks no other set names).
    pub fn confirmed_holder(&self, task: &str) -> Option<&str> {
        self.mentions(task)
            .iter()
            .find(|m| m.confirmed)
            .map(|m| m.lease.as_str())
    }
}

impl Store {
    fn set_path(&self, lease: &str, seq: u32) -> Path {
        self.path(&[SETS, &set_name(lease, seq)])
    }

    /// Writes this writer's set `seq` (a plain put: the name is the writer's own).
    pub(crate) async fn put_set(&self, seq: u32, set: &ClaimSet) -> Result<()> {
        self.inner
            .coord
            .put(
                &self.set_path(&set.lease, seq),
                PutPayload::from(serde_json::to_vec(set)?),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn delete_set(&self, lease: &str, seq: u32) -> Result<()> {
        self.delete_coord(&self.set_path(lease, seq)).await
    }

    /// Every set on the root with its content (read once per version: contents are cached
    /// by their listing's e-tag, or time and size), but those of `skip`.
    pub(crate) async fn read_sets(&self, skip: Option<&str>) -> Result<Vec<(Path, Arc<ClaimSet>)>> {
        let dir = self.path(&[SETS]);
        let metas: Vec<ObjectMeta> = self.inner.coord.list(Some(&dir)).try_collect().await?;
        let wanted: Vec<(ObjectMeta, String)> = metas
            .into_iter()
            .filter_map(|m| {
                let lease = lease_of_set(m.location.filename()?)?.to_string();
                (Some(lease.as_str()) != skip).then_some((m, lease))
            })
            .collect();
        let found: Vec<Option<(Path, Arc<ClaimSet>)>> = futures::stream::iter(wanted)
            .map(|(m, lease)| async move {
                let version = match &m.e_tag {
                    Some(e) => e.clone(),
                    None => format!("{:?}/{}", m.last_modified, m.size),
                };
                let key = m.location.to_string();
                if let Some((v, set)) = self.inner.set_cache.lock().unwrap().get(&key) {
                    if *v == version {
                        return Ok(Some((m.location, set.clone())));
                    }
                }
                let Some(data) = self.get_coord(&m.location).await? else {
                    return Ok(None); // deleted since the listing: it names nothing now
                };
                let set: ClaimSet = serde_json::from_slice(&data).map_err(|e| {
                    StoreError::storage(format!(
                        "claim set {} is not readable ({e}); delete it only once its writer ({lease}) is gone",
                        self.display_path(&m.location)
                    ))
                })?;
                let set = Arc::new(set);
                // A version read after the listing may be newer than the listing's: keep
                // it under the listing's key anyway (the next listing shows a new key).
                self.inner
                    .set_cache
                    .lock()
                    .unwrap()
                    .insert(key, (version, set.clone()));
                Ok::<_, StoreError>(Some((m.location, set)))
            })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Looks at the claims of other writers than `me`: their sets and, with `per_task`,
    /// which tasks have per-task claims. Made after this writer's own claim is written
    /// (a pending set, or per-task claims), so that of two writers claiming one task at
    /// once at least one sees the other's claim.
    pub(crate) async fn look(&self, me: &str, per_task: bool) -> Result<SetView> {
        let mut view = SetView::default();
        for (_, set) in self.read_sets(Some(me)).await? {
            for t in set.named() {
                view.mentions.entry(t.clone()).or_default().push(Mention {
                    lease: set.lease.clone(),
                    confirmed: set.confirmed,
                });
            }
        }
        if per_task {
            view.per_task = self.per_task_claimed().await?;
        }
        Ok(view)
    }

    /// The tasks with a folder of per-task claims.
    async fn per_task_claimed(&self) -> Result<HashSet<String>> {
        if let Some(root) = &self.inner.local {
            // A local root: the folder names, without walking into each folder (a folder
            // being created or emptied counts as claimed: the set round then leaves that
            // task to the per-task claims, which is always safe).
            let dir = root.join(CLAIMS);
            return tokio::task::spawn_blocking(move || {
                let mut out = HashSet::new();
                match std::fs::read_dir(&dir) {
                    Ok(entries) => {
                        for e in entries {
                            let e = e?;
                            if let Some(name) = e.file_name().to_str() {
                                out.insert(name.to_string());
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                Ok(out)
            })
            .await
            .map_err(|e| StoreError::storage(format!("listing the claims: {e}")))?
            .map_err(|e| StoreError::storage(format!("listing the claims: {e}")));
        }
        let dir = self.path(&[CLAIMS]);
        let listed = self.inner.coord.list_with_delimiter(Some(&dir)).await?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Records, for a set this writer publishes, that it is number `seq` (for releases).
    pub(crate) fn remember_set(&self, s: &Session, seq: u32, set: ClaimSet) {
        s.sets.lock().unwrap().insert(seq, set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_give_their_lease_back() {
        let n = set_name("20261201-abc-p0-1f2e3d4c", 7);
        assert_eq!(n, "20261201-abc-p0-1f2e3d4c-s000007.json");
        assert_eq!(lease_of_set(&n), Some("20261201-abc-p0-1f2e3d4c"));
        assert_eq!(lease_of_set(&format!("{n}#12")), None);
        assert_eq!(lease_of_set("x-s12.json"), None);
        assert_eq!(lease_of_set("-s000001.json"), None);
    }

    #[test]
    fn excluded_tasks_are_not_named() {
        let mut s = ClaimSet::new("w", vec!["a".into(), "b".into(), "c".into()]);
        s.excluded = vec!["b".into()];
        assert_eq!(s.named().cloned().collect::<Vec<_>>(), vec!["a", "c"]);
    }
}
